// Raw connection handlers (ASP.NET Core's MapConnectionHandler) through the official HttpConnection, the
// @microsoft/signalr client without its hub layer, as ASP.NET Core's own ConnectionTests drive it: text and
// binary messages both ways on WebSockets, Server-Sent Events (text only) and long polling, the handler's
// hooks in order, closes from either side, authentication, and bad handlers refused at start-up.
import { HttpTransportType, LogLevel, NullLogger, TransferFormat } from "@microsoft/signalr";
// The package exports HttpConnection only from its dist files (as ASP.NET Core's functional tests import it).
import { HttpConnection } from "@microsoft/signalr/dist/cjs/HttpConnection.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RawConnection, RawConnectionHandler } from "../../src/index.js";
import { createServer } from "../../src/index.js";
import { eventually } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

/** What the echo endpoint's hooks saw, in order, per connection id. */
const seen = new Map<string, string[]>();
const note = (connection: RawConnection, what: string) => {
  const list = seen.get(connection.connectionId) ?? [];
  list.push(what);
  seen.set(connection.connectionId, list);
};

/** Echoes each message as it came (text as text, bytes as bytes); "close" makes the server end it. */
const echo: RawConnectionHandler = {
  onConnected(connection) {
    note(connection, `connected ${connection.transport} user=${connection.userId ?? "-"}`);
    connection.send("welcome");
  },
  async onMessage(connection, data) {
    note(connection, typeof data === "string" ? `text ${data}` : `bytes ${[...data].join(",")}`);
    await new Promise((resolve) => setTimeout(resolve, 1)); // async hooks still run in order
    if (data === "close") return connection.close();
    connection.send(data);
  },
  onDisconnected(connection, error) {
    note(connection, `disconnected${error ? ` ${error.message}` : ""}`);
  },
};

let running: RunningServer;

beforeAll(async () => {
  running = await startServer({
    hubs: {},
    connectionHandlers: { "/echo": echo },
    userIdProvider: (req) => new URL(req.url ?? "/", "http://x").searchParams.get("user") ?? undefined,
  });
});
afterAll(() => running.close());

interface Opened {
  connection: HttpConnection;
  received: (string | ArrayBuffer)[];
  closed: Promise<Error | undefined>;
}

async function open(transport: HttpTransportType, format: TransferFormat, query = ""): Promise<Opened> {
  const connection = new HttpConnection(running.url(`/Echo${query}`), {
    transport,
    logger: NullLogger.instance,
  });
  const received: (string | ArrayBuffer)[] = [];
  connection.onreceive = (data) => received.push(data);
  const closed = new Promise<Error | undefined>((resolve) => (connection.onclose = resolve));
  await connection.start(format);
  return { connection, received, closed };
}

const transports = [
  ["WebSockets", HttpTransportType.WebSockets],
  ["ServerSentEvents", HttpTransportType.ServerSentEvents],
  ["LongPolling", HttpTransportType.LongPolling],
] as const;

describe.each(transports)("HttpConnection over %s", (name, transport) => {
  it("gets the handler's welcome, and each text message back, in order", async () => {
    const { connection, received, closed } = await open(transport, TransferFormat.Text, "?user=ann");
    await eventually(() => received.length === 1, 10_000, "the welcome");
    for (const text of ["one", "two", "three"]) {
      await connection.send(text);
      await eventually(() => received.join("").endsWith(text), 10_000, text);
    }
    // A raw connection is a stream: the client may join queued sends, so compare the joined text.
    expect(received.join("")).toBe("welcomeonetwothree");
    const id = connection.connectionId!;
    await connection.stop();
    expect(await closed).toBeUndefined();
    await eventually(() => seen.get(id)?.at(-1) === "disconnected", 10_000, "onDisconnected");
    expect(seen.get(id)![0]).toBe(`connected ${name} user=ann`);
    expect(
      seen
        .get(id)!
        .filter((line) => line.startsWith("text"))
        .join(""),
    ).toBe("text onetext twotext three");
  });

  it("is closed by the handler: the client's onclose runs and the server's onDisconnected once", async () => {
    const { connection, closed } = await open(transport, TransferFormat.Text);
    const id = connection.connectionId!;
    await connection.send("close");
    await closed;
    await eventually(() => seen.get(id)?.includes("disconnected") === true, 10_000, "onDisconnected");
    expect(seen.get(id)!.filter((line) => line.startsWith("disconnected"))).toHaveLength(1);
  });
});

// Server-Sent Events carry text only (negotiate offers them with the Text transfer format alone).
describe.each(transports.filter(([name]) => name !== "ServerSentEvents"))(
  "binary over %s",
  (_, transport) => {
    it("echoes binary messages as bytes", async () => {
      const { connection, received } = await open(transport, TransferFormat.Binary);
      await eventually(() => received.length === 1, 10_000, "the welcome");
      await connection.send(new Uint8Array([1, 2, 255]).buffer);
      await eventually(() => received.length === 2, 10_000, "the echo");
      const echoed = received[1]!;
      expect(echoed).toBeInstanceOf(ArrayBuffer);
      expect([...new Uint8Array(echoed as ArrayBuffer)]).toEqual([1, 2, 255]);
      expect(seen.get(connection.connectionId!)).toContain("bytes 1,2,255");
      await connection.stop();
    });
  },
);

describe("a raw endpoint's requests", () => {
  it("treats a hub handshake as plain text: a raw endpoint parses nothing", async () => {
    // A hub client's handshake is just text here, echoed back like any other.
    const { connection, received } = await open(HttpTransportType.WebSockets, TransferFormat.Text);
    await connection.send('{"protocol":"json","version":1}\u001e');
    await eventually(() => received.length === 2, 10_000, "the echo");
    expect(received[1]).toBe('{"protocol":"json","version":1}\u001e');
    await connection.stop();
  });

  it("uses the server's authentication: 401 without a user where one is required", async () => {
    const guarded = await startServer({
      hubs: {},
      connectionHandlers: { "/echo": echo },
      authenticate: (req) => (req.headers.authorization === "Bearer ok" ? { userId: "u1" } : "unauthorized"),
    });
    try {
      const refused = new HttpConnection(guarded.url("/echo"), { logger: NullLogger.instance });
      await expect(refused.start(TransferFormat.Text)).rejects.toThrow("Status code '401'");
      const allowed = new HttpConnection(guarded.url("/echo"), {
        logger: LogLevel.None,
        accessTokenFactory: () => "ok",
      });
      const received: (string | ArrayBuffer)[] = [];
      allowed.onreceive = (data) => received.push(data);
      await allowed.start(TransferFormat.Text);
      await eventually(() => received.length === 1, 10_000, "the welcome");
      expect(seen.get(allowed.connectionId!)?.[0]).toBe("connected WebSockets user=u1");
      await allowed.stop();
    } finally {
      await guarded.close();
    }
  });
});

describe("a raw connection's limits", () => {
  it("is closed when its credential expires, as a hub connection is", async () => {
    const expiring = await startServer({
      hubs: {},
      connectionHandlers: { "/echo": echo },
      authenticate: () => ({ userId: "u1", expiresAt: new Date(Date.now() + 1500) }),
    });
    try {
      const connection = new HttpConnection(expiring.url("/echo"), { logger: NullLogger.instance });
      const closed = new Promise<Error | undefined>((resolve) => (connection.onclose = resolve));
      await connection.start(TransferFormat.Text);
      const id = connection.connectionId!;
      await closed;
      await eventually(() => seen.get(id)?.includes("disconnected") === true, 10_000, "onDisconnected");
    } finally {
      await expiring.close();
    }
  });

  it("is closed when more than 1,000 messages wait behind a slow handler", async () => {
    let release!: () => void;
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const slow = await startServer({
      hubs: {},
      connectionHandlers: { "/slow": { onMessage: () => stuck } },
    });
    try {
      const connection = new HttpConnection(slow.url("/slow"), {
        transport: HttpTransportType.WebSockets,
        logger: NullLogger.instance,
      });
      const closed = new Promise<Error | undefined>((resolve) => (connection.onclose = resolve));
      await connection.start(TransferFormat.Text);
      for (let i = 0; i < 1100; i++) await connection.send(`m${i}`);
      await closed;
    } finally {
      release();
      await slow.close();
    }
  });

  it("refuses a request whose authenticate hook returned an invalid expiresAt (500, no connection)", async () => {
    const broken = await startServer({
      hubs: {},
      connectionHandlers: { "/echo": echo },
      authenticate: () => ({ userId: "u1", expiresAt: new Date("not a date") }),
    });
    try {
      const response = await fetch(broken.url("/echo/negotiate?negotiateVersion=1"), { method: "POST" });
      expect(response.status).toBe(500);
    } finally {
      await broken.close();
    }
  });
});

describe("bad connection handlers stop start-up, naming the path", () => {
  it.each<[string, unknown, string]>([
    [
      "not an object",
      42,
      "the handler at '/raw' must be an object with onConnected, onMessage and/or onDisconnected.",
    ],
    [
      "a hook that is not a function",
      { onMessage: "echo" },
      "'onMessage' of the handler at '/raw' must be a function.",
    ],
    [
      "no hooks that do anything",
      { onDisconnected() {} },
      "the handler at '/raw' has neither onConnected nor onMessage.",
    ],
  ])("%s", (_, handler, message) => {
    expect(() =>
      createServer({ hubs: {}, connectionHandlers: { "/raw": handler as RawConnectionHandler } }),
    ).toThrow(`Option 'connectionHandlers': ${message}`);
  });

  it("a path a hub already has (in any case)", () => {
    expect(() =>
      createServer({ hubs: { "/Echo": { ping: () => "pong" } }, connectionHandlers: { "/echo": echo } }),
    ).toThrow("Option 'connectionHandlers': '/echo' and '/Echo' differ only in case; paths ignore case.");
  });
});
