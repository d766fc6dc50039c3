// Bearer-JWT authentication end to end: real servers, the official client on every transport, 401s for
// missing, expired and forged tokens, the browser's access_token query parameter on a raw WebSocket, and
// the notification hub refusing a user who registers someone else's identifier.
import { HttpTransportType } from "@microsoft/signalr";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hub } from "../../src/index.js";
import { jwtAuthentication } from "../../src/server/auth.js";
import { connectClient, type TestClient, type TransportKey } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const secret = "integration-secret-of-at-least-32-bytes";
const whoPath = "/hubs/who";
const notificationsPath = "/hubs/notifications";

class WhoHub extends Hub {
  whoAmI(): { userId: string | undefined; name: unknown } {
    return { userId: this.context.userId, name: this.context.auth?.name };
  }
}

async function token(sub: string, options: { key?: string; expiresAt?: number } = {}): Promise<string> {
  return new SignJWT({ sub, name: `${sub} (from the token)` })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? "5m")
    .sign(new TextEncoder().encode(options.key ?? secret));
}

let running: RunningServer;
const clients: TestClient[] = [];

async function client(
  path: string,
  accessToken: string | undefined,
  transport: TransportKey = "WebSockets",
  methods: string[] = [],
): Promise<TestClient> {
  const http = accessToken === undefined ? {} : { accessTokenFactory: () => accessToken };
  const c = await connectClient(running.url(path), methods, { transport, http });
  clients.push(c);
  return c;
}

/** The error start() rejected with. */
async function startError(accessToken: string | undefined): Promise<Error> {
  return client(whoPath, accessToken).then(
    () => {
      throw new Error("expected start() to fail");
    },
    (error: unknown) => error as Error,
  );
}

beforeAll(async () => {
  running = await startServer({
    hubs: { [whoPath]: WhoHub },
    notifications: true,
    authenticate: jwtAuthentication({ secret }),
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await running.close();
});

describe("a client with a valid token", () => {
  it.each<TransportKey>(["WebSockets", "ServerSentEvents", "LongPolling"])(
    "connects over %s and the hub sees the sub as its user id",
    async (transport) => {
      const alice = await client(whoPath, await token("alice"), transport);
      expect(await alice.connection.invoke("whoAmI")).toEqual({
        userId: "alice",
        name: "alice (from the token)",
      });
    },
  );

  it("connects without negotiating (skipNegotiation over WebSockets)", async () => {
    const accessToken = await token("alice");
    const c = await connectClient(running.url(whoPath), [], {
      http: {
        skipNegotiation: true,
        transport: HttpTransportType.WebSockets,
        accessTokenFactory: () => accessToken,
      },
    });
    clients.push(c);
    expect(await c.connection.invoke("whoAmI")).toMatchObject({ userId: "alice" });
  });

  it("connects over a raw WebSocket with the token in the access_token query parameter, as browsers do", async () => {
    const accessToken = await token("alice");
    const raw = await openRaw(running.baseUrl, `${whoPath}?access_token=${encodeURIComponent(accessToken)}`);
    try {
      raw.send('{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}\u001e');
      const reply = await raw.nextFrame((frame) => records(frame).some((r) => r.type === 3));
      expect(records(reply)).toContainEqual({
        type: 3,
        invocationId: "1",
        result: { userId: "alice", name: "alice (from the token)" },
      });
    } finally {
      raw.close();
    }
  });

  it("gets a negotiate response from a raw fetch with the Authorization header", async () => {
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), {
      method: "POST",
      headers: { Authorization: `Bearer ${await token("alice")}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ negotiateVersion: 1 });
  });
});

describe("a client without a valid token", () => {
  it("fails to start without a token: negotiate answers 401", async () => {
    const error = await startError(undefined);
    expect(error.message).toContain("Status code '401'");
    expect(error.message).toBe(
      "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'",
    );
  });

  it("gets 401 from a raw negotiate POST without a token", async () => {
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), { method: "POST" });
    expect(response.status).toBe(401);
  });

  it("fails to start with an expired token", async () => {
    const expired = await token("alice", { expiresAt: Math.floor(Date.now() / 1000) - 60 });
    expect((await startError(expired)).message).toContain("Status code '401'");
  });

  it("fails to start with a token signed by another key", async () => {
    const forged = await token("alice", { key: "an-attackers-secret-of-32-bytes-or-more" });
    expect((await startError(forged)).message).toContain("Status code '401'");
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), {
      method: "POST",
      headers: { Authorization: `Bearer ${forged}` },
    });
    expect(response.status).toBe(401);
  });

  it("gets 401 on a raw WebSocket upgrade without a token, or with a forged one in the query", async () => {
    await expect(openRaw(running.baseUrl, whoPath)).rejects.toThrow("Unexpected server response: 401");
    const forged = await token("alice", { key: "an-attackers-secret-of-32-bytes-or-more" });
    await expect(openRaw(running.baseUrl, `${whoPath}?access_token=${forged}`)).rejects.toThrow(
      "Unexpected server response: 401",
    );
  });
});

describe("the notification hub with JWT users", () => {
  it("refuses mallory registering alice, and notifies alice who registers herself", async () => {
    const mallory = await client(notificationsPath, await token("mallory"), "WebSockets", ["addMessage"]);
    await expect(mallory.connection.invoke("register", "alice")).rejects.toThrow(
      "This connection may not register identifier 'alice'.",
    );

    const alice = await client(notificationsPath, await token("alice"), "WebSockets", ["addMessage"]);
    expect(await alice.connection.invoke("register", "alice")).toMatchObject({ identifier: "alice" });
    const result = await running.server.notifications!.notify("alice", { status: "Confirmed" });
    expect(result.connections).toBe(1);
    expect(await alice.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
    expect(mallory.received("addMessage")).toEqual([]);
  });
});
