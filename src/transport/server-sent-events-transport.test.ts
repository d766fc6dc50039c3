import { afterEach, describe, expect, it } from "vitest";
import { formatServerSentEvent } from "./server-sent-events-transport.js";
import { RecordingHandler, startEndpoint, type EndpointHarness } from "./test-support.js";

describe("formatServerSentEvent", () => {
  it("frames a payload as one event, a data line per line, CR before LF dropped", () => {
    expect(formatServerSentEvent(Buffer.from("abc")).toString()).toBe("data: abc\r\n\r\n");
    expect(formatServerSentEvent(Buffer.from("a\nb\r\nc")).toString()).toBe(
      "data: a\r\ndata: b\r\ndata: c\r\n\r\n",
    );
    expect(formatServerSentEvent(Buffer.from("a\n")).toString()).toBe("data: a\r\ndata: \r\n\r\n");
  });
});

/** Reads a streaming response until `text` has arrived; returns everything read so far. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  text: string,
  seen = "",
): Promise<string> {
  let all = seen;
  while (!all.includes(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${JSON.stringify(text)}; got ${JSON.stringify(all)}`);
    all += Buffer.from(value).toString("utf8");
  }
  return all;
}

describe("Server-Sent Events transport", () => {
  let harness: EndpointHarness;
  afterEach(() => harness.close());

  const negotiate = async () => {
    const res = await fetch(`${harness.url}/negotiate?negotiateVersion=1`, { method: "POST" });
    return ((await res.json()) as { connectionToken: string }).connectionToken;
  };
  const openStream = (token: string, signal?: AbortSignal) =>
    fetch(`${harness.url}?id=${token}`, { headers: { Accept: "text/event-stream" }, signal });

  it("answers with the event-stream headers and a ':' preamble, and frames each send as one event", async () => {
    const handler = new RecordingHandler();
    harness = await startEndpoint({ handler });
    const token = await negotiate();
    const res = await openStream(token);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("cache-control")).toBe("no-cache,no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    expect(res.headers.get("content-encoding")).toBe("identity");
    const reader = res.body!.getReader();
    const preamble = await readUntil(reader, ":\r\n");
    expect(preamble).toBe(":\r\n");

    const recorded = await handler.connections.next();
    expect(recorded.connection.transport).toBe("ServerSentEvents");
    expect(recorded.connection.supportsBinary).toBe(false);
    expect(recorded.connection.inherentKeepAlive).toBe(false);
    expect(recorded.connection.send(Buffer.from('{"type":6}\x1e'))).toBe(true);
    expect(recorded.connection.send(Buffer.from("two\nlines"))).toBe(true);
    const events = await readUntil(reader, "data: lines\r\n\r\n", preamble);
    expect(events).toBe(':\r\ndata: {"type":6}\x1e\r\n\r\ndata: two\r\ndata: lines\r\n\r\n');

    recorded.connection.close();
    expect((await reader.read()).done).toBe(true);
    expect(await recorded.closed).toBeUndefined();
  });

  it("POST delivers the body to onData and answers 200 empty text/plain", async () => {
    const handler = new RecordingHandler();
    harness = await startEndpoint({ handler });
    const token = await negotiate();
    const res = await openStream(token);
    const recorded = await handler.connections.next();
    const post = await fetch(`${harness.url}?id=${token}`, { method: "POST", body: "hi\x1e" });
    expect(post.status).toBe(200);
    expect(post.headers.get("content-type")).toBe("text/plain");
    expect(await post.text()).toBe("");
    expect(await recorded.receivedBytes(3)).toEqual(Buffer.from("hi\x1e"));
    await res.body!.cancel();
  });

  it("a client that drops the stream ends the connection without an error", async () => {
    const handler = new RecordingHandler();
    harness = await startEndpoint({ handler });
    const token = await negotiate();
    const abort = new AbortController();
    const res = await openStream(token, abort.signal);
    await readUntil(res.body!.getReader(), ":\r\n");
    const recorded = await handler.connections.next();
    abort.abort();
    expect(await recorded.closed).toBeUndefined();
    expect(recorded.connection.signal.aborted).toBe(true);
    const post = await fetch(`${harness.url}?id=${token}`, { method: "POST", body: "x" });
    expect(post.status).toBe(404);
  });

  it("refuses a second stream (409), other transports (400) and DELETE (400) on a live connection", async () => {
    const handler = new RecordingHandler();
    harness = await startEndpoint({ handler });
    const token = await negotiate();
    const res = await openStream(token);
    await handler.connections.next();
    expect((await openStream(token)).status).toBe(409);
    const poll = await fetch(`${harness.url}?id=${token}`);
    expect([poll.status, await poll.text()]).toEqual([400, "Cannot change transports mid-connection"]);
    const del = await fetch(`${harness.url}?id=${token}`, { method: "DELETE" });
    expect([del.status, await del.text()]).toEqual([
      400,
      "Cannot terminate this connection using the DELETE endpoint.",
    ]);
    await res.body!.cancel();
  });

  it("needs an id (400) that this node knows (404)", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler() });
    const missing = await fetch(harness.url, { headers: { Accept: "text/event-stream" } });
    expect([missing.status, await missing.text()]).toEqual([400, "Connection ID required"]);
    const unknown = await openStream("unknown");
    expect([unknown.status, await unknown.text()]).toEqual([404, "No Connection with that ID"]);
  });
});
