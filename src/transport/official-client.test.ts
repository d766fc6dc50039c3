// The official @microsoft/signalr client's raw HttpConnection (negotiate + transport, no hub protocol)
// against the endpoint, over each transport: our external conformance check.

import { HttpTransportType, LogLevel, TransferFormat } from "@microsoft/signalr";
import { HttpConnection } from "@microsoft/signalr/dist/esm/HttpConnection.js";
import { afterEach, describe, expect, it } from "vitest";
import { AsyncQueue, RecordingHandler, startEndpoint, type EndpointHarness } from "./test-support.js";
import type { FrameFormat } from "./transport-connection.js";

interface Client {
  connection: HttpConnection;
  received: AsyncQueue<string | ArrayBuffer>;
  closed: Promise<Error | undefined>;
}

function createClient(url: string, transport: HttpTransportType, skipNegotiation = false): Client {
  const connection = new HttpConnection(url, { transport, skipNegotiation, logger: LogLevel.None });
  const received = new AsyncQueue<string | ArrayBuffer>();
  connection.onreceive = (data) => received.push(data);
  const closed = new Promise<Error | undefined>((resolve) => (connection.onclose = resolve));
  return { connection, received, closed };
}

const cases: { name: string; transport: HttpTransportType; expected: string }[] = [
  { name: "WebSockets", transport: HttpTransportType.WebSockets, expected: "WebSockets" },
  { name: "Server-Sent Events", transport: HttpTransportType.ServerSentEvents, expected: "ServerSentEvents" },
  { name: "long polling", transport: HttpTransportType.LongPolling, expected: "LongPolling" },
];

describe("the official client's HttpConnection", () => {
  let harness: EndpointHarness;
  let handler: RecordingHandler;
  const start = async (echo: FrameFormat) => {
    handler = new RecordingHandler(echo);
    harness = await startEndpoint({ handler });
  };
  afterEach(() => harness.close());

  for (const { name, transport, expected } of cases) {
    it(`connects, sends, receives text and stops cleanly over ${name}`, async () => {
      await start("Text");
      const client = createClient(harness.url, transport);
      await client.connection.start(TransferFormat.Text);
      const recorded = await handler.connections.next();
      expect(recorded.connection.transport).toBe(expected);
      expect(recorded.connection.connectionId).toBe(client.connection.connectionId);

      await client.connection.send('{"protocol":"json","version":1}\x1e');
      expect(await client.received.next()).toBe('{"protocol":"json","version":1}\x1e');
      await client.connection.send("second\x1e");
      expect(await client.received.next()).toBe("second\x1e");

      await client.connection.stop();
      expect(await client.closed).toBeUndefined();
      expect(await recorded.closed).toBeUndefined();
      expect(recorded.closeCalls).toBe(1);
    });

    it(`is closed without an error when the server closes the connection over ${name}`, async () => {
      await start("Text");
      const client = createClient(harness.url, transport);
      await client.connection.start(TransferFormat.Text);
      const recorded = await handler.connections.next();
      recorded.connection.close();
      expect(await client.closed).toBeUndefined();
      expect(await recorded.closed).toBeUndefined();
    });
  }

  for (const { name, transport } of cases.filter((c) => c.transport !== HttpTransportType.ServerSentEvents)) {
    it(`sends and receives binary over ${name}`, async () => {
      await start("Binary");
      const client = createClient(harness.url, transport);
      await client.connection.start(TransferFormat.Binary);
      const recorded = await handler.connections.next();
      const bytes = new Uint8Array([0x02, 0x91, 0x06, 0x00, 0xff]);
      await client.connection.send(bytes.buffer);
      expect(await recorded.receivedBytes(5)).toEqual(Buffer.from(bytes));
      const echoed = await client.received.next();
      expect(echoed).toBeInstanceOf(ArrayBuffer);
      expect(new Uint8Array(echoed as ArrayBuffer)).toEqual(bytes);
      await client.connection.stop();
      expect(await recorded.closed).toBeUndefined();
    });
  }

  it("skips negotiation over WebSockets", async () => {
    await start("Text");
    const client = createClient(harness.url, HttpTransportType.WebSockets, true);
    await client.connection.start(TransferFormat.Text);
    const recorded = await handler.connections.next();
    await client.connection.send("x\x1e");
    expect(await client.received.next()).toBe("x\x1e");
    await client.connection.stop();
    expect(await recorded.closed).toBeUndefined();
  });

  it("falls back from WebSockets when the server only offers long polling", async () => {
    handler = new RecordingHandler("Text");
    harness = await startEndpoint({ handler, transports: ["LongPolling"] });
    const client = createClient(harness.url, HttpTransportType.WebSockets | HttpTransportType.LongPolling);
    await client.connection.start(TransferFormat.Text);
    expect((await handler.connections.next()).connection.transport).toBe("LongPolling");
    await client.connection.stop();
  });
});
