import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ConnectionEndpoint } from "./connection-endpoint.js";
import {
  RecordingHandler,
  endpointsClosedAfterEach,
  TEST_SECRET,
  type EndpointHarness,
} from "./test-support.js";
import type { Logger } from "../log.js";
import type { ConnectionCallbacks, ConnectionHandler, TransportConnection } from "./transport-connection.js";

describe("ConnectionEndpoint", () => {
  const start = endpointsClosedAfterEach();

  const negotiate = async (harness: EndpointHarness, version = 1) => {
    const res = await fetch(`${harness.url}/negotiate?negotiateVersion=${version}`, { method: "POST" });
    return (await res.json()) as { connectionId: string; connectionToken?: string };
  };

  it("accepts a pino logger", () => {
    const logger: Logger = pino({ level: "silent" });
    expect(
      () =>
        new ConnectionEndpoint({
          path: "/x",
          handler: new RecordingHandler(),
          tokenSecret: () => TEST_SECRET,
          logger,
        }),
    ).not.toThrow();
  });

  it("rejects invalid options", () => {
    const base = { handler: new RecordingHandler(), tokenSecret: () => TEST_SECRET };
    expect(() => new ConnectionEndpoint({ ...base, path: "chat" })).toThrow(TypeError);
    expect(() => new ConnectionEndpoint({ ...base, path: "/chat", transports: [] })).toThrow(RangeError);
    expect(() => new ConnectionEndpoint({ ...base, path: "/chat", disconnectTimeoutMs: 0 })).toThrow(
      RangeError,
    );
  });

  it("negotiate version 0: the connection id is the id clients send, and only the issuing node knows it", async () => {
    const handler = new RecordingHandler("Text");
    const a = await start({ handler });
    const b = await start({ handler: new RecordingHandler() });
    const { connectionId } = await negotiate(a, 0);
    expect((await fetch(`${b.url}?id=${connectionId}`)).status).toBe(404);
    const first = await fetch(`${a.url}?id=${connectionId}`);
    expect(first.status).toBe(200);
    const recorded = await handler.connections.next();
    expect(recorded.connection.connectionId).toBe(connectionId);
  });

  it("without forwarding, SSE and long polling need the node that negotiated (sticky sessions)", async () => {
    const a = await start({ handler: new RecordingHandler() });
    const b = await start({ handler: new RecordingHandler() });
    const { connectionToken } = await negotiate(a);
    expect((await fetch(`${b.url}?id=${connectionToken}`)).status).toBe(404);
    const sse = await fetch(`${b.url}?id=${connectionToken}`, { headers: { Accept: "text/event-stream" } });
    expect(sse.status).toBe(404);
  });

  it("with forwarding, every SSE and long-polling request goes to the node that negotiated", async () => {
    const urls = new Map<string, string>();
    const nodeUrl = (nodeId: string) => Promise.resolve(urls.get(nodeId));
    const [idA, idB] = [randomUUID(), randomUUID()];
    const handler = new RecordingHandler("Text");
    const a = await start({ handler, forwarding: { nodeId: idA, nodeUrl } });
    const b = await start({ handler: new RecordingHandler(), forwarding: { nodeId: idB, nodeUrl } });
    urls.set(idA, a.origin).set(idB, b.origin);
    const { connectionToken } = await negotiate(a);
    expect(connectionToken).toHaveLength(80);
    const url = `${b.url}?id=${connectionToken}`;

    expect((await fetch(url)).status).toBe(200); // the first poll, through b
    const recorded = await handler.connections.next();
    expect((await fetch(url, { method: "POST", body: "hello" })).status).toBe(200);
    expect((await recorded.receivedBytes(5)).toString()).toBe("hello");
    const poll = await fetch(url); // the echo, through b
    expect([poll.status, await poll.text()]).toEqual([200, "hello"]);

    // One hop at most: a request another node already forwarded is not forwarded again.
    const again = await fetch(url, {
      method: "POST",
      body: "x",
      headers: { "X-Switchboard-Forwarded-By": idA },
    });
    expect(again.status).toBe(404);
    expect((await fetch(url, { method: "DELETE" })).status).toBe(202);
    await recorded.closed;
    // A home node the directory does not know (gone): 404, as for any unknown connection.
    urls.delete(idA);
    expect((await fetch(url, { method: "POST", body: "x" })).status).toBe(404);
  });

  it("refuses a forwarding node id that is not a UUID", () => {
    const options = {
      path: "/x",
      handler: new RecordingHandler(),
      tokenSecret: () => TEST_SECRET,
      forwarding: { nodeId: "node-1", nodeUrl: () => Promise.resolve(undefined) },
    };
    expect(() => new ConnectionEndpoint(options)).toThrow(
      "forwarding.nodeId must be a UUID (it goes into tokens), not 'node-1'.",
    );
  });

  it("serves paths with a trailing slash and a root endpoint", async () => {
    const a = await start({ handler: new RecordingHandler(), path: "/" });
    expect((await fetch(`${a.origin}/negotiate?negotiateVersion=1`, { method: "POST" })).status).toBe(200);
    const b = await start({ handler: new RecordingHandler() });
    expect((await fetch(`${b.url}/negotiate/`, { method: "POST" })).status).toBe(200);
    expect((await fetch(`${b.origin}/chatty/negotiate`, { method: "POST" })).status).toBe(404);
  });

  it("authentication refuses the requests that start SSE and long polling with 401", async () => {
    const handler = new RecordingHandler();
    const a = await start({
      handler,
      authenticate: (req) => (req.headers["x-deny"] ? "unauthorized" : { userId: "u1" }),
    });
    const deny = { "X-Deny": "1" };
    const { connectionToken } = await negotiate(a);
    const sse = await fetch(`${a.url}?id=${connectionToken}`, {
      headers: { ...deny, Accept: "text/event-stream" },
    });
    expect([sse.status, await sse.text()]).toEqual([401, ""]);
    const poll = await fetch(`${a.url}?id=${connectionToken}`, { headers: deny });
    expect([poll.status, await poll.text()]).toEqual([401, ""]);
    expect((await fetch(`${a.url}?id=${connectionToken}`)).status).toBe(200);
    expect((await handler.connections.next()).connection.request.userId).toBe("u1");
  });

  it("a handler may send from inside onConnected on every transport", async () => {
    const greeter: ConnectionHandler = {
      onConnected(connection: TransportConnection): ConnectionCallbacks {
        connection.send(Buffer.from("welcome"));
        return { onData: () => {}, onClose: () => {} };
      },
    };
    const a = await start({ handler: greeter });
    const sse = await fetch(`${a.url}?id=${(await negotiate(a)).connectionToken}`, {
      headers: { Accept: "text/event-stream" },
    });
    expect(sse.headers.get("content-type")).toBe("text/event-stream");
    const reader = sse.body!.getReader();
    let text = "";
    while (!text.includes("data: welcome\r\n\r\n"))
      text += Buffer.from((await reader.read()).value!).toString();
    expect(text).toBe(":\r\ndata: welcome\r\n\r\n");
    await reader.cancel();

    const token = (await negotiate(a)).connectionToken!;
    expect((await fetch(`${a.url}?id=${token}`)).status).toBe(200);
    expect(await (await fetch(`${a.url}?id=${token}`)).text()).toBe("welcome");
  });

  it("a handler that throws in onData loses only its own connection", async () => {
    const echo = new RecordingHandler("Text");
    let connections = 0;
    const handler: ConnectionHandler = {
      onConnected(connection) {
        connections += 1;
        if (connections > 1) return echo.onConnected(connection);
        return {
          onData: () => {
            throw new Error("bug in the hub");
          },
          onClose: () => {},
        };
      },
    };
    const a = await start({ handler });
    const broken = new WebSocket(a.url.replace("http", "ws"));
    await once(broken, "open");
    const healthy = new WebSocket(a.url.replace("http", "ws"));
    await once(healthy, "open");
    const brokenClosed = once(broken, "close");
    broken.send("x");
    expect((await brokenClosed)[0]).toBe(1011);
    const echoed = once(healthy, "message");
    healthy.send("still here");
    expect(String((await echoed)[0])).toBe("still here");
    healthy.close();
  });

  it("never logs connection tokens", async () => {
    const lines: string[] = [];
    const capture = (obj: object, msg?: string) => lines.push(JSON.stringify(obj) + (msg ?? ""));
    const logger: Logger = { debug: capture, info: capture, warn: capture, error: capture };
    const handler = new RecordingHandler("Text");
    const a = await start({ handler, logger, disconnectTimeoutMs: 50 });
    const { connectionToken } = await negotiate(a);
    const token = connectionToken!;
    await fetch(`${a.url}?id=${token}`);
    const recorded = await handler.connections.next();
    await fetch(`${a.url}?id=${token}`, { method: "POST", body: "hi" });
    await fetch(`${a.url}?id=${token}`, { headers: { Accept: "text/event-stream" } });
    await fetch(`${a.url}?id=${token}XX`);
    await recorded.closed;
    expect(lines.length).toBeGreaterThan(3);
    expect(lines.join("\n")).not.toContain(token);
  });
});
