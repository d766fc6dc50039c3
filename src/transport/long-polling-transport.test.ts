import { once } from "node:events";
import { request } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { RecordingHandler, startEndpoint, type EndpointHarness } from "./test-support.js";

interface Answer {
  status: number;
  type: string | null;
  body: Buffer;
  headers: Headers;
}

describe("long polling transport", () => {
  let harness: EndpointHarness;
  let handler: RecordingHandler;
  afterEach(() => harness.close());

  const start = async (options: Partial<Parameters<typeof startEndpoint>[0]> = {}) => {
    handler = new RecordingHandler();
    harness = await startEndpoint({ handler, ...options });
  };
  const negotiate = async () => {
    const res = await fetch(`${harness.url}/negotiate?negotiateVersion=1`, { method: "POST" });
    return ((await res.json()) as { connectionToken: string }).connectionToken;
  };
  const call = async (method: string, token: string, body?: string | Buffer): Promise<Answer> => {
    const res = await fetch(`${harness.url}?id=${token}&_=${Date.now()}`, { method, body });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, type: res.headers.get("content-type"), body: bytes, headers: res.headers };
  };
  const poll = (token: string) => call("GET", token);
  /**
   * Resolves once the server has handled the next request's synchronous part (a poll parked, a send
   * begun): the endpoint's own listener runs before this one.
   */
  const arrived = () => once(harness.server, "request");
  /** Negotiates and makes the first poll; returns the token and the recorded connection. */
  const connect = async () => {
    const token = await negotiate();
    const first = await poll(token);
    expect(first.status).toBe(200);
    return { token, recorded: await handler.connections.next() };
  };

  it("the first poll returns 200 empty at once, with no-cache headers, and starts the connection", async () => {
    await start();
    const token = await negotiate();
    const first = await poll(token);
    expect(first.status).toBe(200);
    expect(first.type).toBe("application/octet-stream");
    expect(first.body).toHaveLength(0);
    expect(first.headers.get("content-length")).toBe("0");
    expect(first.headers.get("cache-control")).toBe("no-cache, no-store");
    expect(first.headers.get("pragma")).toBe("no-cache");
    expect(first.headers.get("expires")).toBe("Thu, 01 Jan 1970 00:00:00 GMT");
    const recorded = await handler.connections.next();
    expect(recorded.connection.transport).toBe("LongPolling");
    expect(recorded.connection.inherentKeepAlive).toBe(true);
    expect(recorded.connection.supportsBinary).toBe(true);
  });

  it("a later poll waits for data and returns everything buffered in one body", async () => {
    await start();
    const { token, recorded } = await connect();
    const parked = arrived();
    const pending = poll(token);
    await parked;
    recorded.connection.send(Buffer.from("one\x1e"));
    recorded.connection.send(Buffer.from([0x02, 0x91, 0x06]), "Binary");
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(answer.type).toBe("application/octet-stream");
    expect(answer.body).toEqual(Buffer.concat([Buffer.from("one\x1e"), Buffer.from([0x02, 0x91, 0x06])]));
  });

  it("data sent between polls is returned by the next poll at once", async () => {
    await start();
    const { token, recorded } = await connect();
    recorded.connection.send(Buffer.from("queued"));
    expect((await poll(token)).body.toString()).toBe("queued");
  });

  it("a poll with no data returns 200 empty text/plain after the poll timeout", async () => {
    await start({ longPollingTimeoutMs: 30 });
    const { token } = await connect();
    const answer = await poll(token);
    expect([answer.status, answer.type, answer.body.length]).toEqual([200, "text/plain", 0]);
  });

  it("a new poll supersedes a pending one, which gets 204", async () => {
    await start();
    const { token, recorded } = await connect();
    const parked = arrived();
    const first = poll(token);
    await parked;
    const second = poll(token);
    expect((await first).status).toBe(204);
    recorded.connection.send(Buffer.from("x"));
    expect((await second).body.toString()).toBe("x");
  });

  it("DELETE answers 202, ends the pending poll with 204 and closes without an error", async () => {
    await start();
    const { token, recorded } = await connect();
    const parked = arrived();
    const pending = poll(token);
    await parked;
    const del = await call("DELETE", token);
    expect(del.status).toBe(202);
    expect((await pending).status).toBe(204);
    expect(await recorded.closed).toBeUndefined();
    expect(recorded.closeCalls).toBe(1);
    expect((await call("DELETE", token)).status).toBe(404);
  });

  it("a server close drains what was sent, then answers 204", async () => {
    await start();
    const { token, recorded } = await connect();
    recorded.connection.send(Buffer.from("bye"));
    recorded.connection.close();
    expect(await recorded.closed).toBeUndefined();
    expect((await poll(token)).body.toString()).toBe("bye");
    expect((await poll(token)).status).toBe(204);
  });

  it("a server close answers a pending poll with 204", async () => {
    await start();
    const { token, recorded } = await connect();
    const parked = arrived();
    const pending = poll(token);
    await parked;
    recorded.connection.close();
    expect((await pending).status).toBe(204);
  });

  it("a client that stops polling is closed with an error after the disconnect timeout", async () => {
    await start({ disconnectTimeoutMs: 30 });
    const { recorded } = await connect();
    const error = await recorded.closed;
    expect(error?.message).toBe("The long polling client did not poll within 30 ms.");
    expect(recorded.connection.signal.aborted).toBe(true);
  });

  it("POST delivers text and binary bodies in order and answers 200 empty text/plain", async () => {
    await start();
    const { token, recorded } = await connect();
    const text = await call("POST", token, "hello\x1e");
    expect([text.status, text.type, text.body.length]).toEqual([200, "text/plain", 0]);
    expect((await call("POST", token, Buffer.from([0, 1, 2]))).status).toBe(200);
    expect(await recorded.receivedBytes(9)).toEqual(
      Buffer.concat([Buffer.from("hello\x1e"), Buffer.from([0, 1, 2])]),
    );
  });

  it("POST: 400 without id, 404 for an unknown one, 413 over the body limit", async () => {
    await start({ maxRequestBodyBytes: 8 });
    const { token, recorded } = await connect();
    const noId = await fetch(harness.url, { method: "POST", body: "x" });
    expect([noId.status, await noId.text()]).toEqual([400, "Connection ID required"]);
    const unknown = await call("POST", "nope", "x");
    expect([unknown.status, unknown.body.toString()]).toEqual([404, "No Connection with that ID"]);
    expect((await call("POST", token, "0123456789")).status).toBe(413);
    expect(recorded.received).toHaveLength(0);
    expect((await call("POST", token, "ok")).status).toBe(200);
  });

  it("an overlapping POST gets 409 and the first one still lands", async () => {
    await start();
    const { token, recorded } = await connect();
    const url = new URL(`${harness.url}?id=${token}`);
    const slow = request(url, { method: "POST", headers: { "Content-Length": "4" } });
    const slowDone = new Promise<number>((resolve) => slow.on("response", (res) => resolve(res.statusCode!)));
    const begun = arrived();
    slow.write("ab");
    await begun;
    expect((await call("POST", token, "zz")).status).toBe(409);
    slow.end("cd");
    expect(await slowDone).toBe(200);
    expect((await recorded.receivedBytes(4)).toString()).toBe("abcd");
  });

  it("a WebSocket upgrade for a long polling connection gets 400; other verbs get 405", async () => {
    await start();
    const { token } = await connect();
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${harness.url.replace("http", "ws")}?id=${token}`);
      socket.on("unexpected-response", (_req, res) => resolve(res.statusCode!));
      socket.on("error", () => {});
    });
    expect(status).toBe(400);
    expect((await call("PUT", token)).status).toBe(405);
  });
});
