/**
 * The light load clients: one per server protocol, all on the same `ws` client with the same options,
 * and each parsing a notification with one JSON.parse, so the client side costs the same whatever the
 * server. They answer nothing but what a protocol requires to stay connected (Socket.IO's pong); the
 * SignalR client never pings, so our server never arms its client timeout.
 */
import { Agent, request } from "node:http";
import WebSocket from "ws";
import type { SendPlan, SendReport } from "../lib/plan.js";

export type ClientKind = "signalr" | "socketio" | "ws";

/** What a client hands to the load process. */
export interface ClientHandlers {
  notify(phase: number, seq: number, sentAtMicros: number): void;
  done(report: SendReport): void;
  result(id: number, value: unknown): void;
  /** The connection ended after its handshake (the server dropped it). */
  closed(): void;
  /** A reconnecting client is connected again (and when it first connected). */
  connected?(): void;
  /**
   * A stateful client's one resume attempt failed, so it starts anew and what the server kept is lost:
   * `refused` when the server answered it with an error status, false when the attempt's own socket broke
   * (the jitter cut it too).
   */
  resumeFailed?(refused: boolean): void;
}

export interface LoadClient {
  /** Starts the server-side sender (only on the control client). */
  start(plan: SendPlan): void;
  ack(delivered: number): void;
  /** Invokes `echo(value)`; the answer comes to `handlers.result(id, …)`. */
  echo(id: number, value: unknown): void;
  close(): void;
}

export interface ConnectOptions {
  kind: ClientKind;
  /** `http://127.0.0.1:port` of the server. */
  baseUrl: string;
  /**
   * SignalR only: when the socket drops, come back. Stateful clients resume the same connection at the
   * same URL (Sequence, de-duplication, Acks, as the official client does); plain ones start a new one.
   * Reconnects go to `reconnectUrl` (a balancer) when given.
   */
  reconnect?: { stateful: boolean; reconnectUrl?: string };
  user: string;
  group?: string;
  /** A loopback source address (127.0.0.x), so many sockets do not run out of ephemeral ports. */
  localAddress?: string;
  /** Keep-alive agent for SignalR's negotiate POSTs. */
  agent?: Agent;
  handlers: ClientHandlers;
  timeoutMs: number;
  /**
   * SignalR only: receive over Server-Sent Events or long polling instead of a WebSocket. Negotiate goes to
   * `baseUrl` (the connection's home node); the event stream, polls and sends go to `requestUrl` when
   * given (another node, which forwards each of them home: the extra hop).
   */
  http?: { transport: "sse" | "longpolling"; requestUrl?: string };
  /**
   * SignalR only: open the WebSocket without negotiating first (the official clients' `skipNegotiation`
   * with the WebSockets transport), as the Socket.IO client here opens its WebSocket without its
   * long-polling handshake (`transport=websocket`).
   */
  skipNegotiation?: boolean;
}

const RS = "\u001e";
/** The invocation id of the echo that confirms a group join (the bench's own echoes are numbers). */
const JOIN_CONFIRMATION = "join";

/** One protocol: how to read what the server sends, how to shake hands, and the client's verbs. */
interface Protocol {
  /** Handles one WebSocket message; `ready` completes the protocol handshake. */
  onMessage(text: string, socket: WebSocket, ready: () => void): void;
  /** What to send once the WebSocket is open (nothing when the server speaks first). */
  hello?: string;
  /** True when the open WebSocket is already the whole handshake. */
  readyOnOpen?: boolean;
  verbs(socket: WebSocket): Omit<LoadClient, "close">;
}

export async function connectClient(options: ConnectOptions): Promise<LoadClient> {
  const query = new URLSearchParams({ user: options.user });
  if (options.group) query.set("group", options.group);
  const wsBase = options.baseUrl.replace(/^http/, "ws");
  switch (options.kind) {
    case "signalr": {
      if (options.reconnect) return reconnecting(options, options.reconnect);
      if (options.skipNegotiation) {
        return open(
          `${wsBase}/hub?${query}`,
          options,
          signalr(options.handlers, options.group !== undefined),
        );
      }
      const negotiateUrl = `${options.baseUrl}/hub/negotiate?negotiateVersion=1&${query}`;
      const { connectionToken } = await negotiate(negotiateUrl, options);
      query.set("id", connectionToken);
      if (options.http) {
        const url = `${options.http.requestUrl ?? options.baseUrl}/hub?${query}`;
        return overHttp(url, options, options.http.transport);
      }
      return open(`${wsBase}/hub?${query}`, options, signalr(options.handlers, options.group !== undefined));
    }
    case "socketio":
      query.set("EIO", "4");
      query.set("transport", "websocket");
      return open(`${wsBase}/socket.io/?${query}`, options, socketio(options.handlers));
    case "ws":
      return open(`${wsBase}/?${query}`, options, bareWs(options.handlers));
  }
}

/**
 * Opens the WebSocket with its message handler attached at once (a server that speaks first, as
 * Socket.IO does, may send in the same segment as the upgrade answer) and completes the protocol's
 * handshake within the time-out.
 */
function open(url: string, options: ConnectOptions, protocol: Protocol): Promise<LoadClient> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      perMessageDeflate: false,
      localAddress: options.localAddress,
      handshakeTimeout: options.timeoutMs,
    });
    let settled = false;
    let connected = false;
    const timer = setTimeout(() => fail(new Error("handshake timed out")), options.timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.terminate();
      reject(err);
    };
    const ready = () => {
      if (settled) return;
      settled = connected = true;
      clearTimeout(timer);
      resolve({ ...protocol.verbs(socket), close: () => socket.terminate() });
    };
    socket.on("message", (data: Buffer) => protocol.onMessage(data.toString(), socket, ready));
    socket.once("open", () => {
      if (protocol.hello !== undefined) socket.send(protocol.hello);
      if (protocol.readyOnOpen) ready();
    });
    socket.once("error", fail);
    socket.once("close", () => {
      if (!settled) fail(new Error("closed during the handshake"));
      else if (connected) options.handlers.closed(); // not a socket that failed before it was ready
    });
  });
}

function negotiate(url: string, options: ConnectOptions): Promise<{ connectionToken: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: "POST", agent: options.agent, localAddress: options.localAddress },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString()) as { connectionToken?: string };
            if (res.statusCode !== 200 || !body.connectionToken)
              throw new Error(`negotiate: ${res.statusCode}`);
            resolve({ connectionToken: body.connectionToken });
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error("negotiate timed out")));
    req.on("error", reject);
    req.end();
  });
}

interface SignalRMessage {
  type?: number;
  target?: string;
  arguments?: unknown[];
  invocationId?: string;
  result?: unknown;
  error?: string;
}

/**
 * SignalR JSON hub protocol: 0x1E-separated records; `{}` answers the handshake. With `confirmJoin` the
 * client is ready only once an `echo` it sends after the handshake is answered: the hub joins the group
 * in onConnected, which runs after the handshake answer and before the hub reads any invocation, so
 * the answer is the first moment the membership is known to be in force.
 */
function signalr(handlers: ClientHandlers, confirmJoin: boolean): Protocol {
  const invoke = (socket: WebSocket, target: string, args: unknown[], id?: number | string) => {
    const message =
      id === undefined
        ? { type: 1, target, arguments: args }
        : { type: 1, invocationId: String(id), target, arguments: args };
    socket.send(JSON.stringify(message) + RS);
  };
  return {
    hello: `{"protocol":"json","version":1}${RS}`,
    onMessage(text, socket, ready) {
      let start = 0;
      for (let end = text.indexOf(RS); end >= 0; start = end + 1, end = text.indexOf(RS, start)) {
        const message = JSON.parse(text.slice(start, end)) as SignalRMessage;
        if (message.type === 1 && message.invocationId !== undefined) {
          // A client result (scenario 7): answered with the first argument, at once.
          const answer = {
            type: 3,
            invocationId: message.invocationId,
            result: message.arguments?.[0] ?? null,
          };
          socket.send(JSON.stringify(answer) + RS);
        } else if (message.type === 1 && message.target === "n") {
          const [phase, seq, sentAt] = message.arguments as number[];
          handlers.notify(phase!, seq!, sentAt!);
        } else if (message.type === 3 && message.invocationId === JOIN_CONFIRMATION) {
          ready();
        } else if (message.type === 3) {
          handlers.result(Number(message.invocationId), message.error ?? message.result);
        } else if (message.type === 1 && message.target === "done") {
          handlers.done(message.arguments![0] as SendReport);
        } else if (message.type === undefined) {
          if (message.error)
            socket.close(); // a refused handshake
          else if (confirmJoin) invoke(socket, "echo", [0], JOIN_CONFIRMATION);
          else ready(); // the handshake answer, `{}`
        }
      }
    },
    verbs: (socket) => ({
      start: (plan) => invoke(socket, "start", [plan]),
      ack: (delivered) => invoke(socket, "ack", [delivered]),
      echo: (id, value) => invoke(socket, "echo", [value], id),
    }),
  };
}

/** Keep-alive sockets for the SSE and long-polling clients' requests, for the life of the load process. */
const httpAgent = new Agent({ keepAlive: true, maxSockets: Infinity });

/** One HTTP exchange; resolves with the status and the whole body. */
function exchange(
  url: string,
  options: ConnectOptions,
  method: "GET" | "POST",
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: httpAgent, localAddress: options.localAddress }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * A SignalR JSON client over Server-Sent Events or long polling (scenario 8): the same protocol handling
 * as the WebSocket client, with the event stream or a loop of polls for what the server sends, and one
 * POST at a time for what it sends itself (as the official client does: the server refuses overlaps).
 */
function overHttp(
  url: string,
  options: ConnectOptions,
  transport: "sse" | "longpolling",
): Promise<LoadClient> {
  const protocol = signalr(options.handlers, options.group !== undefined);
  let stopped = false;
  let sending: Promise<unknown> = Promise.resolve();
  let stopStream: (() => void) | undefined;
  // The protocol's handlers write through this stand-in for a WebSocket.
  const channel = {
    send: (text: string) => {
      sending = sending.then(() => exchange(url, options, "POST", text)).catch(() => {});
    },
    close: () => {
      stopped = true;
      stopStream?.();
    },
  } as unknown as WebSocket;
  return new Promise<LoadClient>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error("handshake timed out")), options.timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      stopped = true;
      clearTimeout(timer);
      stopStream?.();
      reject(err);
    };
    const ready = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...protocol.verbs(channel), close: () => channel.close() });
    };
    const ended = () => {
      if (!settled) fail(new Error("the server ended the connection during the handshake"));
      else if (!stopped) options.handlers.closed();
      stopped = true;
    };
    const received = (text: string) => protocol.onMessage(text, channel, ready);

    if (transport === "longpolling") {
      void (async () => {
        const first = await exchange(url, options, "GET");
        if (first.status !== 200) throw new Error(`first poll: ${first.status}`);
        channel.send(protocol.hello!);
        while (!stopped) {
          const poll = await exchange(url, options, "GET");
          if (poll.status !== 200) return ended();
          if (poll.body.length > 0) received(poll.body);
        }
      })().catch((err: unknown) => (settled ? ended() : fail(err as Error)));
      return;
    }
    const req = request(
      url,
      { agent: httpAgent, localAddress: options.localAddress, headers: { Accept: "text/event-stream" } },
      (res) => {
        if (res.statusCode !== 200) return fail(new Error(`event stream: ${res.statusCode}`));
        channel.send(protocol.hello!);
        let pending = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          pending += chunk;
          // Events end with a blank line; each of their `data: ` lines is a line of the payload.
          for (let end = pending.indexOf("\r\n\r\n"); end >= 0; end = pending.indexOf("\r\n\r\n")) {
            const event = pending.slice(0, end);
            pending = pending.slice(end + 4);
            const lines = event.split("\r\n").filter((line) => line.startsWith("data: "));
            if (lines.length > 0) received(lines.map((line) => line.slice(6)).join("\n"));
          }
        });
        res.on("end", ended);
        res.on("error", ended);
      },
    );
    stopStream = () => req.destroy();
    req.on("error", (err) => (settled ? ended() : fail(err)));
    req.end();
  });
}

/**
 * A SignalR receiver that comes back when its socket drops (jitter and avalanche scenarios). Stateful:
 * negotiate asks for stateful reconnect, the handshake says version 2, trackable messages are counted and
 * acknowledged about once a second; after a drop it reopens the same URL, sends Sequence 1 (it never sends
 * a trackable message itself), skips what arrives before the server's Sequence and drops what it has
 * already received, as the official client's MessageBuffer does. Plain: it negotiates a new connection.
 */
async function reconnecting(
  options: ConnectOptions,
  mode: { stateful: boolean; reconnectUrl?: string },
): Promise<LoadClient> {
  const query = new URLSearchParams({ user: options.user });
  const stateful = mode.stateful ? "&useStatefulReconnect=true" : "";
  const base = { url: options.baseUrl };
  let closedByUs = false;
  let socket: WebSocket | undefined;
  // Stateful bookkeeping: what the server numbered and we took, and our Ack.
  let nextId = 1;
  let latestId = 0;
  let ackedId = 0;
  let awaitingSequence = false;
  let ackTimer: NodeJS.Timeout | undefined;
  const scheduleAck = () => {
    ackTimer ??= setTimeout(() => {
      ackTimer = undefined;
      if (latestId > ackedId && socket?.readyState === WebSocket.OPEN) {
        ackedId = latestId;
        socket.send(`{"type":8,"sequenceId":${latestId}}${RS}`);
      }
    }, 1000);
  };
  const onText = (text: string, ready: () => void) => {
    let start = 0;
    for (let end = text.indexOf(RS); end >= 0; start = end + 1, end = text.indexOf(RS, start)) {
      const message = JSON.parse(text.slice(start, end)) as SignalRMessage & { sequenceId?: number };
      if (message.type === undefined) {
        if (message.error) socket?.close();
        else ready();
        continue;
      }
      if (mode.stateful) {
        if (awaitingSequence) {
          if (message.type !== 9) continue;
          awaitingSequence = false;
        }
        if (message.type === 9) {
          nextId = message.sequenceId!;
          continue;
        }
        if (message.type >= 1 && message.type <= 5) {
          const id = nextId++;
          if (id <= latestId) continue; // already received before the drop
          latestId = id;
          scheduleAck();
        }
      }
      if (message.type === 1 && message.target === "n") {
        const [phase, seq, sentAt] = message.arguments as number[];
        options.handlers.notify(phase!, seq!, sentAt!);
      }
    }
  };
  let token = "";
  // Reconnects negotiate on a connection of their own: thousands of real clients coming back at once do
  // not queue behind the few sockets of the load process's shared agent.
  const own = { ...options, agent: undefined };
  const connect = async (resume: boolean): Promise<void> => {
    if (!resume) {
      const negotiateUrl = `${base.url}/hub/negotiate?negotiateVersion=1&${query}${stateful}`;
      token = (await negotiate(negotiateUrl, own)).connectionToken;
    }
    // Closed while it was negotiating: a socket opened now would outlive close() and go on receiving
    // (and resuming) under this user while the next phase's client does too.
    if (closedByUs) throw new Error("closed");
    const url = `${base.url.replace(/^http/, "ws")}/hub?${query}&id=${encodeURIComponent(token)}`;
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, localAddress: options.localAddress });
      socket = ws;
      let settled = false;
      // Only a socket that was ready comes back when it closes: one that failed before (a refused resume,
      // a cut during the upgrade) is retried by the loop that opened it, and a second loop started from its
      // close would give the user two connections at once.
      let wasReady = false;
      const ready = () => {
        if (settled) return;
        settled = wasReady = true;
        options.handlers.connected?.();
        resolve();
      };
      ws.on("message", (data: Buffer) => onText(data.toString(), ready));
      ws.once("open", () => {
        if (resume) {
          awaitingSequence = true;
          ws.send(`{"type":9,"sequenceId":1}${RS}`);
          ready();
        } else {
          ws.send(`{"protocol":"json","version":${mode.stateful ? 2 : 1}}${RS}`);
        }
      });
      ws.once("error", (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      ws.once("close", () => {
        if (!settled) {
          settled = true;
          reject(new Error("closed before it was ready"));
          return;
        }
        if (!wasReady) return;
        options.handlers.closed();
        if (!closedByUs) void comeBack();
      });
    });
  };
  /** One resume attempt for a stateful client (as the official client makes), then new connections. */
  const comeBack = async (): Promise<void> => {
    if (mode.reconnectUrl) base.url = mode.reconnectUrl;
    if (mode.stateful) {
      try {
        return await connect(true);
      } catch (err) {
        // One attempt, then start anew, as the official client does. ws names a refusal's status.
        const refused = err instanceof Error && err.message.startsWith("Unexpected server response");
        options.handlers.resumeFailed?.(refused);
        nextId = 1;
        latestId = ackedId = 0;
        awaitingSequence = false;
      }
    }
    for (let attempt = 0; !closedByUs; attempt++) {
      try {
        return await connect(false);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
  };
  await connect(false);
  return {
    start() {},
    ack() {},
    echo() {},
    close() {
      closedByUs = true;
      clearTimeout(ackTimer);
      socket?.terminate();
    },
  };
}

/** Socket.IO v4 over a bare WebSocket (engine.io 4): `0` open, `40` connect, `2`/`3` ping/pong, `42` events, `43` acks. */
function socketio(handlers: ClientHandlers): Protocol {
  return {
    onMessage(text, socket, ready) {
      if (text.startsWith("42[")) {
        const [event, ...args] = JSON.parse(text.slice(2)) as [string, ...unknown[]];
        if (event === "n") handlers.notify(args[0] as number, args[1] as number, args[2] as number);
        else if (event === "done") handlers.done(args[0] as SendReport);
      } else if (text.startsWith("43")) {
        const bracket = text.indexOf("[");
        const [value] = JSON.parse(text.slice(bracket)) as unknown[];
        handlers.result(Number(text.slice(2, bracket)), value);
      } else if (text === "2") {
        socket.send("3");
      } else if (text.startsWith("0{")) {
        socket.send("40");
      } else if (text.startsWith("40")) {
        ready();
      }
    },
    verbs: (socket) => ({
      start: (plan) => socket.send(`42${JSON.stringify(["start", plan])}`),
      ack: (delivered) => socket.send(`42${JSON.stringify(["ack", delivered])}`),
      echo: (id, value) => socket.send(`42${id}${JSON.stringify(["echo", value])}`),
    }),
  };
}

/** The bare ws server's JSON arrays; open means connected. */
function bareWs(handlers: ClientHandlers): Protocol {
  return {
    readyOnOpen: true,
    onMessage(text) {
      const message = JSON.parse(text) as unknown[];
      if (message[0] === "n")
        handlers.notify(message[1] as number, message[2] as number, message[3] as number);
      else if (message[0] === "r") handlers.result(message[1] as number, message[2]);
      else if (message[0] === "done") handlers.done(message[1] as SendReport);
    },
    verbs: (socket) => ({
      start: (plan) => socket.send(JSON.stringify(["start", plan])),
      ack: (delivered) => socket.send(JSON.stringify(["ack", delivered])),
      echo: (id, value) => socket.send(JSON.stringify(["echo", id, value])),
    }),
  };
}
