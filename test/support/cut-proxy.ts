// A TCP proxy whose connections a test (or the bench) can cut, as a dropped network would: the client's
// socket ends without a WebSocket close frame and the server learns it only from its own socket closing.
// Given several targets it balances them round-robin per TCP connection (as an L4 balancer does, with no
// stickiness: a client's negotiate and its WebSocket usually land on different targets).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface CutProxy {
  /** `http://127.0.0.1:<port>`: use it in place of the target's base URL. */
  readonly url: string;
  /** Connections open through the proxy now. */
  readonly open: number;
  /** Cuts every open connection (both sides destroyed at once). @returns how many were cut. */
  cutAll(): number;
  /**
   * Stops carrying bytes on every open connection without closing it, as a network that drops packets
   * silently would: neither side learns anything. New connections still go through. @returns how many.
   */
  silenceAll(): number;
  /** Cuts `fraction` of the open connections, picked at random. @returns how many were cut. */
  cutSome(fraction: number): number;
  /** Sends new connections to other targets from now on (a client that comes back lands elsewhere). */
  retarget(urls: string | string[]): void;
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  upstream: Socket;
}

/** Starts a proxy on a free loopback port in front of `targets` (http://host:port each). */
export async function startCutProxy(targets: string | string[]): Promise<CutProxy> {
  let urls = [targets].flat().map((t) => new URL(t));
  let next = 0;
  const pipes = new Set<Pipe>();
  const cut = (pipe: Pipe): void => {
    pipes.delete(pipe);
    pipe.client.destroy();
    pipe.upstream.destroy();
  };
  const server: Server = createServer((client) => {
    const target = urls[next++ % urls.length]!;
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    const pipe = { client, upstream };
    pipes.add(pipe);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => cut(pipe);
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, () => resolve());
  });
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    get open() {
      return pipes.size;
    },
    cutAll() {
      const all = [...pipes];
      all.forEach(cut);
      return all.length;
    },
    silenceAll() {
      for (const { client, upstream } of pipes) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
      return pipes.size;
    },
    cutSome(fraction) {
      const chosen = [...pipes].filter(() => Math.random() < fraction);
      chosen.forEach(cut);
      return chosen.length;
    },
    retarget(list) {
      urls = [list].flat().map((t) => new URL(t));
    },
    async close() {
      for (const pipe of [...pipes]) cut(pipe);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
