import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { WebSocket, type ClientOptions } from "ws";
import { issueConnectionToken } from "./connection-token.js";
import {
  RecordingHandler,
  endpointsClosedAfterEach,
  TEST_SECRET,
  type EndpointHarness,
} from "./test-support.js";
import type { ConnectionHandler } from "./transport-connection.js";

interface Refused {
  status: number;
  body: string;
}

/** Opens a WebSocket, or resolves with the HTTP answer that refused it. */
function openWebSocket(url: string, options?: ClientOptions): Promise<WebSocket | Refused> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url.replace(/^http/, "ws"), options);
    socket.once("open", () => resolve(socket));
    socket.once("unexpected-response", (_req, res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.once("error", reject);
  });
}

async function mustOpen(url: string, options?: ClientOptions): Promise<WebSocket> {
  const result = await openWebSocket(url, options);
  if (!(result instanceof WebSocket)) throw new Error(`refused: ${result.status} ${result.body}`);
  return result;
}

async function negotiate(harness: EndpointHarness, headers: Record<string, string> = {}) {
  const res = await fetch(`${harness.url}/negotiate?negotiateVersion=1`, { method: "POST", headers });
  return (await res.json()) as { connectionId: string; connectionToken: string };
}

function nextMessage(socket: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return once(socket, "message").then(([data, isBinary]) => ({ data: data as Buffer, isBinary: !!isBinary }));
}

describe("WebSocket transport", () => {
  const start = endpointsClosedAfterEach();

  it("a token negotiated on one node starts a WebSocket on another node with the same secret", async () => {
    const a = await start({ handler: new RecordingHandler() });
    const handlerB = new RecordingHandler("Binary");
    const b = await start({ handler: handlerB });
    const { connectionId, connectionToken } = await negotiate(a);

    const socket = await mustOpen(`${b.url}?id=${connectionToken}`);
    const recorded = await handlerB.connections.next();
    expect(recorded.connection.connectionId).toBe(connectionId);
    expect(recorded.connection.transport).toBe("WebSockets");
    expect(recorded.connection.supportsBinary).toBe(true);
    expect(recorded.connection.inherentKeepAlive).toBe(false);
    expect(recorded.connection.request.query.has("id")).toBe(false);

    const echoed = nextMessage(socket);
    socket.send("hello\x1e");
    expect(await recorded.receivedBytes(6)).toEqual(Buffer.from("hello\x1e"));
    expect(await echoed).toEqual({ data: Buffer.from("hello\x1e"), isBinary: true });
    socket.close();
  });

  it("a token signed with another secret, an unknown id or a stale token gets 404", async () => {
    const a = await start({ handler: new RecordingHandler() });
    const b = await start({ handler: new RecordingHandler(), tokenSecret: () => new Uint8Array(32).fill(9) });
    const { connectionToken } = await negotiate(a);
    expect(await openWebSocket(`${b.url}?id=${connectionToken}`)).toEqual({
      status: 404,
      body: "No Connection with that ID",
    });
    expect(await openWebSocket(`${a.url}?id=nope`)).toEqual({
      status: 404,
      body: "No Connection with that ID",
    });
    const stale = issueConnectionToken(TEST_SECRET, undefined, Date.now() - 10 * 60_000);
    expect(await openWebSocket(`${a.url}?id=${stale.connectionToken}`)).toMatchObject({ status: 404 });
  });

  it("a second WebSocket with a live token gets 409, and a used token gets 404 after close", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler });
    const { connectionToken } = await negotiate(a);
    const first = await mustOpen(`${a.url}?id=${connectionToken}`);
    const recorded = await handler.connections.next();
    expect(await openWebSocket(`${a.url}?id=${connectionToken}`)).toEqual({ status: 409, body: "" });
    first.close();
    expect(await recorded.closed).toBeUndefined();
    expect(await openWebSocket(`${a.url}?id=${connectionToken}`)).toMatchObject({ status: 404 });
  });

  it("without an id (skipNegotiation) a connection is made up on the fly", async () => {
    const handler = new RecordingHandler("Text");
    const a = await start({ handler });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    expect(recorded.connection.connectionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const echoed = nextMessage(socket);
    socket.send(Buffer.from([1, 2, 3]));
    expect(await echoed).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: false });
    socket.close();
  });

  it("answers each ping with a pong carrying its data, and the connection goes on", async () => {
    const handler = new RecordingHandler("Text");
    const a = await start({ handler });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    for (const data of ["one", "two"]) {
      const pong = once(socket, "pong");
      socket.ping(data);
      expect(((await pong)[0] as Buffer).toString()).toBe(data);
    }
    socket.send("still here\x1e");
    expect(await recorded.receivedBytes(11)).toEqual(Buffer.from("still here\x1e"));
    socket.close();
  });

  it("authentication: 401 when refused; the user reaches the request; a token is bound to its user", async () => {
    const users: Record<string, string> = { "Bearer a": "alice", "Bearer b": "bob" };
    const handler = new RecordingHandler();
    const a = await start({
      handler,
      authenticate: (req) => {
        const userId = users[req.headers.authorization ?? ""];
        return userId ? { userId, claims: { role: "tester" } } : "unauthorized";
      },
    });
    expect(await openWebSocket(a.url)).toEqual({ status: 401, body: "" });
    const { connectionToken } = await negotiate(a, { Authorization: "Bearer a" });
    const asBob = await openWebSocket(`${a.url}?id=${connectionToken}`, {
      headers: { Authorization: "Bearer b" },
    });
    expect(asBob).toMatchObject({ status: 404 });
    const socket = await mustOpen(`${a.url}?id=${connectionToken}`, {
      headers: { Authorization: "Bearer a" },
    });
    const recorded = await handler.connections.next();
    expect(recorded.connection.request.userId).toBe("alice");
    expect(recorded.connection.request.auth).toEqual({ role: "tester" });
    socket.close();
  });

  it("a disabled transport gets 404 with .NET's text", async () => {
    const a = await start({ handler: new RecordingHandler(), transports: ["LongPolling"] });
    expect(await openWebSocket(a.url)).toEqual({
      status: 404,
      body: "WebSockets transport not supported by this end point type",
    });
  });

  it("server close sends 1000, aborts the signal and calls onClose once without an error", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    const closed = once(socket, "close");
    recorded.connection.close();
    recorded.connection.close();
    expect(recorded.connection.signal.aborted).toBe(true);
    expect(recorded.connection.send(Buffer.from("late"))).toBe(false);
    const [code] = await closed;
    expect(code).toBe(1000);
    expect(await recorded.closed).toBeUndefined();
    expect(recorded.closeCalls).toBe(1);
  });

  it("the signal aborts with the connection's error whether it was read before or after the end", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler });
    const early = await mustOpen(a.url);
    const late = await mustOpen(a.url);
    const [first, second] = [await handler.connections.next(), await handler.connections.next()];
    expect(first.connection.request.remoteAddress).toMatch(/127\.0\.0\.1$/);
    const abortedWith = new Promise<unknown>((resolve) =>
      first.connection.signal.addEventListener("abort", () => resolve(first.connection.signal.reason)),
    );
    early.close(4000);
    late.close(4000);
    expect(String(await abortedWith)).toContain("WebSocket closed with status code: 4000");
    await second.closed;
    expect(second.connection.signal.aborted).toBe(true);
    expect(String(second.connection.signal.reason)).toContain("WebSocket closed with status code: 4000");
  });

  it("a client close with an unusual code ends the connection with an error", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    socket.close(4000, "bye");
    const error = await recorded.closed;
    expect(error?.message).toBe("WebSocket closed with status code: 4000 (bye).");
  });

  it("send refuses data while the socket buffer is over the limit", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler, maxBufferedBytes: 1024 });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    // The client stops reading, so the server's socket buffer fills up.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    expect(recorded.connection.send(Buffer.alloc(32 * 1024 * 1024), "Binary")).toBe(true);
    expect(recorded.connection.send(Buffer.from("more"))).toBe(false);
    socket.terminate();
  });

  it("a handler that throws in onConnected gets that socket closed with 1011, others keep working", async () => {
    let calls = 0;
    const echo = new RecordingHandler("Text");
    const handler: ConnectionHandler = {
      onConnected(connection) {
        calls += 1;
        if (calls === 1) throw new Error("handler bug");
        return echo.onConnected(connection);
      },
    };
    const a = await start({ handler });
    const broken = await mustOpen(a.url);
    const [code] = await once(broken, "close");
    expect(code).toBe(1011);
    const healthy = await mustOpen(a.url);
    const echoed = nextMessage(healthy);
    healthy.send("ok");
    expect((await echoed).data.toString()).toBe("ok");
    healthy.close();
  });

  it("endpoint close ends every connection and refuses new ones with 503", async () => {
    const handler = new RecordingHandler();
    const a = await start({ handler });
    const socket = await mustOpen(a.url);
    const recorded = await handler.connections.next();
    const closed = once(socket, "close");
    await a.endpoint.close();
    expect(recorded.closeCalls).toBe(1);
    expect((await closed)[0]).toBe(1000);
    expect(await openWebSocket(a.url)).toMatchObject({ status: 503 });
  });
});
