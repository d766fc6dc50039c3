// Confirmed notifications on one node: notify({ confirm: true }) resolves once a registered client's handler
// has answered, naming the connection; a handler that throws or never answers confirms nothing, and the
// notification stays pending until a connection that registers later confirms it; the HTTP API answers 200
// with the confirming connection, or 202 while it is still pending. (Across nodes, with a node killed:
// test/cluster/confirmed-notifications.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotConfirmedError, NotConnectedError } from "../../src/index.js";
import { connectClient, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const path = "/hubs/notifications";
let running: RunningServer;
const clients: TestClient[] = [];

/** A client registered under `identifier` whose addMessage handler runs `answer` and records each call. */
async function registered(identifier: string, answer: (text: string, id: string) => unknown) {
  const c = await connectClient(running.url(path), []);
  clients.push(c);
  const calls: { text: string; id: string }[] = [];
  c.connection.on("addMessage", (text: string, meta: { id: string }) => {
    calls.push({ text, id: meta.id });
    return answer(text, meta.id);
  });
  await c.connection.invoke("register", identifier);
  return { client: c, calls, connectionId: c.connection.connectionId! };
}

const notifyApi = (identifier: string, body: object) =>
  fetch(running.url(`/api/notifications/${identifier}`), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  running = await startServer({
    hubs: {},
    notifications: { allowAnonymousRegistration: true },
    api: { allowWithoutKey: true },
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await running.close();
});

describe("notify with confirm", () => {
  it("resolves once the client's handler answered, naming its connection; the handler got the id", async () => {
    const a = await registered("order-c1", () => true);
    const result = await running.server.notifications!.notify(
      "order-c1",
      { status: "Confirmed" },
      { confirm: true },
    );
    expect(result).toMatchObject({
      identifier: "order-c1",
      text: "Your request has been confirmed.",
      connections: 1,
      confirmedBy: a.connectionId,
    });
    expect(a.calls).toEqual([{ text: "Your request has been confirmed.", id: result.notificationId }]);
  });

  it("confirms nothing when the handler throws; a connection that registers later gets it and confirms", async () => {
    const failing = await registered("order-c2", () => {
      throw new Error("the screen is locked");
    });
    const notified = running.server.notifications!.notify(
      "order-c2",
      { message: "Your parcel is here" },
      { confirm: true },
    );
    await expect.poll(() => failing.calls.length).toBe(1);
    const later = await registered("order-c2", () => "seen");
    const result = await notified;
    expect(result.confirmedBy).toBe(later.connectionId);
    expect(later.calls).toEqual([{ text: "Your parcel is here", id: result.notificationId }]);
    // Confirmed: a third registration gets nothing more.
    const third = await registered("order-c2", () => true);
    await third.client.connection.invoke("whereAmI"); // after register's deliveries would have started
    expect(third.calls).toEqual([]);
  });

  it("rejects with NotConfirmedError after the timeout, and the notification stays pending", async () => {
    const silent = await registered("order-c3", () => new Promise(() => {})); // never answers
    const error = await running.server
      .notifications!.notify("order-c3", { status: "Failed" }, { confirm: true, confirmTimeoutMs: 300 })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotConfirmedError);
    expect((error as NotConfirmedError).message).toContain("it stays pending");
    expect(silent.calls).toHaveLength(1);
    const next = await registered("order-c3", () => true);
    await expect
      .poll(() => next.calls.map((c) => c.id))
      .toEqual([(error as NotConfirmedError).notificationId]);
  });

  it("is a NotConnectedError when nobody registered the identifier", async () => {
    await expect(
      running.server.notifications!.notify("nobody-c4", { status: "Confirmed" }, { confirm: true }),
    ).rejects.toBeInstanceOf(NotConnectedError);
  });
});

describe("POST /api/notifications/{identifier} with confirm", () => {
  it("answers 200 with the confirming connection", async () => {
    const a = await registered("order-c5", () => true);
    const response = await notifyApi("order-c5", { status: "Confirmed", confirm: true });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ identifier: "order-c5", confirmedBy: a.connectionId });
  });

  it("answers 202 with the notification's id while no client has confirmed it", async () => {
    await registered("order-c6", () => new Promise(() => {}));
    const response = await notifyApi("order-c6", {
      status: "Confirmed",
      confirm: true,
      confirmTimeoutMs: 200,
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({
      identifier: "order-c6",
      notificationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      pending: true,
    });
  });

  it("refuses a confirmTimeoutMs that is not a whole number of milliseconds", async () => {
    const response = await notifyApi("order-c7", {
      status: "Confirmed",
      confirm: true,
      confirmTimeoutMs: 0.5,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: "invalid_request" });
  });
});
