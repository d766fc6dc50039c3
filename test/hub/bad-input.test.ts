// Malformed input closes only the connection that sent it, with a reason; the server and everyone else go on.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectClient, type TestClient } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

let server: RunningServer;
let bystander: TestClient;

beforeAll(async () => {
  server = await startServer({ hubs: { "/testhub": TestHub }, handshakeTimeoutMs: 300 });
  bystander = await connectClient(server.url("/testhub"));
});
afterAll(async () => {
  await bystander.stop();
  await server.close();
});

/** Sends `data` on a fresh connection and returns the Close message the server answered with. */
async function closeReasonFor(data: string | Buffer): Promise<Record<string, unknown>> {
  const raw = await openRaw(server.baseUrl, "/testhub");
  raw.send(data);
  const frame = await raw.nextFrame((f) => records(f).some((r) => r.type === 7));
  await raw.closed;
  return records(frame).find((r) => r.type === 7)!;
}

describe("a malformed frame", () => {
  it.each([
    ["invalid JSON", "{not json\u001e", /Connection closed with an error\. .+/],
    ["a type that is not a number", '{"type":"x"}\u001e', /Connection closed with an error\. .+/],
    [
      "an invocation without a target",
      '{"type":1,"invocationId":"1","arguments":[]}\u001e',
      /Connection closed with an error\. .+/,
    ],
    [
      "arguments that are not an array",
      '{"type":1,"target":"Echo","arguments":5}\u001e',
      /Connection closed with an error\. .+/,
    ],
    ["a JSON value that is not an object", "42\u001e", /Connection closed with an error\. .+/],
  ])("closes the connection that sent %s, with a reason", async (_, data, reason) => {
    const close = await closeReasonFor(data);
    expect(close.error).toMatch(reason);
    expect(await bystander.connection.invoke("Echo", "still here")).toBe("still here");
  });

  it("closes a connection whose message passes the size limit, even without its record separator", async () => {
    const close = await closeReasonFor("x".repeat(40_000));
    expect(close.error).toBe(
      "Connection closed with an error. The maximum message size of 32768B was exceeded. The message size can be configured in the server options (maximumReceiveMessageSize).",
    );
  });

  it("ends the official client's connection with the size error it can read", async () => {
    const client = await connectClient(server.url("/testhub"));
    const invocation = client.connection.invoke("Echo", "y".repeat(40_000));
    await expect(invocation).rejects.toThrow();
    const error = await client.closed;
    expect(error?.message).toMatch(
      /Server returned an error on close: Connection closed with an error\. The maximum message size of 32768B was exceeded/,
    );
  });

  it("ignores a message type it does not know and keeps the connection", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub");
    raw.send('{"type":99}\u001e{"type":1,"invocationId":"1","target":"Echo","arguments":["ok"]}\u001e');
    const reply = records(await raw.nextFrame((f) => records(f).some((r) => r.type === 3)));
    expect(reply).toContainEqual({ type: 3, invocationId: "1", result: "ok" });
    raw.close();
  });

  it("never replies to a non-blocking invocation", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub");
    raw.send(
      '{"type":1,"target":"Echo","arguments":["no reply"]}\u001e{"type":1,"target":"NotAMethod","arguments":[]}\u001e',
    );
    raw.send('{"type":1,"invocationId":"7","target":"Echo","arguments":["reply"]}\u001e');
    const frame = await raw.nextFrame((f) => records(f).some((r) => r.type === 3));
    expect(raw.frames.flatMap(records).filter((r) => r.type === 3)).toEqual([
      { type: 3, invocationId: "7", result: "reply" },
    ]);
    expect(records(frame)).toContainEqual({ type: 3, invocationId: "7", result: "reply" });
    raw.close();
  });
});

describe("the handshake", () => {
  it("answers an unknown protocol with an error and closes", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub", { handshake: false });
    raw.send('{"protocol":"carrier-pigeon","version":1}\u001e');
    expect(String(await raw.nextFrame())).toBe(
      '{"error":"The protocol \'carrier-pigeon\' is not supported."}\u001e',
    );
    await raw.closed;
  });

  it("answers an unsupported version with an error and closes", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub", { handshake: false });
    raw.send('{"protocol":"json","version":99}\u001e');
    expect(String(await raw.nextFrame())).toBe(
      '{"error":"The server does not support version 99 of the \'json\' protocol."}\u001e',
    );
    await raw.closed;
  });

  it("accepts version 2 as well as 1", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub", {
      handshake: '{"protocol":"json","version":2}\u001e',
    });
    raw.close();
  });

  it("closes a connection whose handshake never comes", async () => {
    const raw = await openRaw(server.baseUrl, "/testhub", { handshake: false });
    await raw.closed;
    expect(raw.frames).toEqual([]);
  });
});

describe("random input (property-based)", () => {
  it("any bytes after the handshake either get answers or close that connection alone", async () => {
    const validFrame = '{"type":1,"invocationId":"1","target":"Echo","arguments":["x"]}\u001e';
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
      fc.string({ maxLength: 200 }),
      fc
        .tuple(fc.nat(validFrame.length - 1), fc.string({ minLength: 1, maxLength: 3 }))
        .map(([at, junk]) => validFrame.slice(0, at) + junk + validFrame.slice(at + 1)),
    );
    await fc.assert(
      fc.asyncProperty(payload, async (data) => {
        const raw = await openRaw(server.baseUrl, "/testhub");
        raw.send(data);
        // A blocking call after the junk: it is answered unless the junk closed the connection.
        raw.send('{"type":1,"invocationId":"probe","target":"Echo","arguments":["probe"]}\u001e');
        const outcome = await Promise.race([
          raw
            .nextFrame((f) => records(f).some((r) => r.invocationId === "probe" || r.type === 7))
            .then(() => "answered"),
          raw.closed.then(() => "closed"),
        ]);
        expect(["answered", "closed"]).toContain(outcome);
        raw.close();
      }),
      { numRuns: 40 },
    );
    expect(await bystander.connection.invoke("Echo", "alive")).toBe("alive");
  });
});
