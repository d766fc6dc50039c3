// Helpers around the official @microsoft/signalr client, unmodified, as users run it in Node.
import {
  HttpTransportType,
  HubConnection,
  HubConnectionBuilder,
  HubConnectionState,
  LogLevel,
  type IHttpConnectionOptions,
} from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export type ProtocolName = "json" | "messagepack";
export type TransportKey = "WebSockets" | "ServerSentEvents" | "LongPolling";

/** Every transport × protocol pair the official client supports (MessagePack cannot use SSE). */
export const transportMatrix: { transport: TransportKey; protocol: ProtocolName }[] = [
  { transport: "WebSockets", protocol: "json" },
  { transport: "WebSockets", protocol: "messagepack" },
  { transport: "ServerSentEvents", protocol: "json" },
  { transport: "LongPolling", protocol: "json" },
  { transport: "LongPolling", protocol: "messagepack" },
];

export interface ClientOptions {
  transport?: TransportKey;
  protocol?: ProtocolName;
  /** Reconnect delays for withAutomaticReconnect; none by default. */
  reconnectDelays?: number[];
  http?: Partial<IHttpConnectionOptions>;
  serverTimeoutMs?: number;
  keepAliveIntervalMs?: number;
}

/** A started official client that records what the server invoked on it. */
export interface TestClient {
  connection: HubConnection;
  /** Arguments of every call of `method`, in arrival order. */
  received(method: string): unknown[][];
  /** Resolves with the arguments of the `count`-th call of `method` (1-based), waiting if needed. */
  next(method: string, count?: number): Promise<unknown[]>;
  /** Resolves when the connection closes, with the error it closed with. */
  closed: Promise<Error | undefined>;
  stop(): Promise<void>;
}

/** Builds and starts an official client against `url`, listening for `methods`. */
export async function connectClient(
  url: string,
  methods: string[] = [],
  options: ClientOptions = {},
): Promise<TestClient> {
  const transport = HttpTransportType[options.transport ?? "WebSockets"];
  let builder = new HubConnectionBuilder()
    .withUrl(url, { transport, ...options.http })
    .configureLogging(LogLevel.None);
  if ((options.protocol ?? "json") === "messagepack")
    builder = builder.withHubProtocol(new MessagePackHubProtocol());
  if (options.reconnectDelays) builder = builder.withAutomaticReconnect(options.reconnectDelays);
  const connection = builder.build();
  if (options.serverTimeoutMs) connection.serverTimeoutInMilliseconds = options.serverTimeoutMs;
  if (options.keepAliveIntervalMs) connection.keepAliveIntervalInMilliseconds = options.keepAliveIntervalMs;

  const calls = new Map<string, unknown[][]>();
  const waiters: { method: string; count: number; resolve: (args: unknown[]) => void }[] = [];
  for (const method of methods) {
    calls.set(method, []);
    connection.on(method, (...args: unknown[]) => {
      const list = calls.get(method)!;
      list.push(args);
      for (const waiter of waiters.filter((w) => w.method === method && w.count === list.length)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(args);
      }
    });
  }
  const closed = new Promise<Error | undefined>((resolve) => connection.onclose((error) => resolve(error)));
  await connection.start();
  return {
    connection,
    received: (method) => calls.get(method) ?? [],
    next(method, count) {
      const list = calls.get(method);
      if (!list) throw new Error(`The test client does not listen for '${method}'.`);
      const wanted = count ?? list.length + 1;
      if (list.length >= wanted) return Promise.resolve(list[wanted - 1]!);
      return new Promise((resolve) => waiters.push({ method, count: wanted, resolve }));
    },
    closed,
    async stop() {
      if (connection.state !== HubConnectionState.Disconnected) await connection.stop();
    },
  };
}

/** Resolves when `predicate` holds, checking on every event-loop turn for up to `timeoutMs`. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
