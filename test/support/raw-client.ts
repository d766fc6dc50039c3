// A bare WebSocket speaking the hub protocol by hand: only for feeding a server what no official client would send.
import WebSocket from "ws";

export interface RawClient {
  socket: WebSocket;
  /** Every frame received, as text (JSON) or bytes (MessagePack). */
  frames: (string | Buffer)[];
  /** Resolves with the next frame that matches, waiting if needed. */
  nextFrame(match?: (frame: string | Buffer) => boolean): Promise<string | Buffer>;
  closed: Promise<{ code: number; reason: string }>;
  send(data: string | Buffer): void;
  close(): void;
}

/** Opens a WebSocket to a hub without negotiating (as skipNegotiation does) and, unless told not to, shakes hands. */
export async function openRaw(
  baseUrl: string,
  path: string,
  options: { handshake?: string | false } = {},
): Promise<RawClient> {
  const socket = new WebSocket(baseUrl.replace(/^http/, "ws") + path);
  const frames: (string | Buffer)[] = [];
  let seen = 0;
  const waiters: {
    from: number;
    match: (f: string | Buffer) => boolean;
    resolve: (f: string | Buffer) => void;
  }[] = [];
  socket.on("message", (data: Buffer, isBinary: boolean) => {
    frames.push(isBinary ? data : data.toString("utf8"));
    for (const waiter of [...waiters]) {
      const index = frames.findIndex((f, i) => i >= waiter.from && waiter.match(f));
      if (index >= 0) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(frames[index]!);
      }
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const client: RawClient = {
    socket,
    frames,
    nextFrame(match = () => true) {
      const from = seen;
      const index = frames.findIndex((f, i) => i >= from && match(f));
      if (index >= 0) {
        seen = index + 1;
        return Promise.resolve(frames[index]!);
      }
      return new Promise((resolve) =>
        waiters.push({
          from,
          match,
          resolve: (f) => {
            seen = frames.indexOf(f) + 1;
            resolve(f);
          },
        }),
      );
    },
    closed,
    send: (data) => socket.send(data),
    close: () => socket.close(),
  };
  if (options.handshake !== false) {
    client.send(options.handshake ?? '{"protocol":"json","version":1}\u001e');
    const reply = await client.nextFrame();
    if (String(reply) !== "{}\u001e") throw new Error(`Handshake failed: ${String(reply)}`);
  }
  return client;
}

/** Parses the JSON records of a text frame. */
export function records(frame: string | Buffer): Record<string, unknown>[] {
  return String(frame)
    .split("\u001e")
    .filter((r) => r.length > 0)
    .map((r) => JSON.parse(r) as Record<string, unknown>);
}
