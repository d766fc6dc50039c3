/**
 * One way to talk to Redis, standalone or Cluster: `send(key, args)` runs a command on the master that
 * holds `key` (node-redis routes it and follows MOVED and ASK while slots move). Replies come back as
 * Buffers; {@link text} reads one as a string.
 */
import calculateSlot from "cluster-key-slot";
import { createClient, createCluster, RESP_TYPES } from "redis";
import type { ResolvedRedisOptions } from "./options.js";

export type Reply = Buffer | string | number | null | Reply[];

export interface RedisLink {
  /** Runs one command on the master holding `key` (any master when undefined). */
  send(key: string | undefined, args: (string | Buffer)[]): Promise<Reply>;
  /** Which master holds `key` now, as an opaque name ("" for a standalone Redis): keys with one name can go in one script. */
  masterOf(key: string): string;
  /** A second link of its own, for a blocking read that must not hold up the others' commands. */
  duplicate(): RedisLink;
  connect(): Promise<void>;
  close(): Promise<void>;
  /** Drops the connections at once, failing what is in flight (a blocking read, on shutdown). */
  destroy(): void;
}

/** A Buffer or string reply as a string (an integer as its decimal text; nil as undefined). */
export function text(reply: Reply | undefined): string | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (Buffer.isBuffer(reply)) return reply.toString();
  if (typeof reply === "string") return reply;
  if (typeof reply === "number") return String(reply);
  throw new TypeError("Expected a string reply, got an array.");
}

export function texts(reply: Reply): string[] {
  return Array.isArray(reply) ? reply.map((r) => text(r) ?? "") : [];
}

/** A flat HGETALL reply as a Map. */
export function hash(reply: Reply): Map<string, string> {
  const values = texts(reply);
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < values.length; i += 2) map.set(values[i]!, values[i + 1]!);
  return map;
}

const buffers = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer } as const;

/**
 * Connects nothing yet. Commands fail at once while the link is down (no offline queue): a publish then
 * fails clearly instead of being written minutes later, after its sender gave up on it.
 */
export function createLink(
  options: ResolvedRedisOptions,
  onError: (err: Error) => void,
  /** The connections' CLIENT SETNAME: other nodes see from it whether this node's process is alive. */
  name?: string,
): RedisLink {
  const socket = {
    connectTimeout: 5000,
    reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 1000),
  };
  if (options.cluster) {
    const make = () =>
      createCluster({
        rootNodes: options.urls.map((url) => ({ url })),
        defaults: {
          name,
          password: options.password,
          username: options.username,
          disableOfflineQueue: true,
          socket,
        },
      }).withTypeMapping(buffers);
    const wrap = (cluster: ReturnType<typeof make>): RedisLink => {
      cluster.on("error", onError);
      return {
        masterOf: (key) => cluster.slots[calculateSlot(key)]?.master.address ?? "",
        send: (key, args) =>
          cluster.sendCommand(key, false, args, { typeMapping: buffers }) as Promise<Reply>,
        duplicate: () => wrap(make()),
        connect: async () => {
          await cluster.connect();
        },
        close: async () => {
          if (cluster.isOpen) await cluster.close().catch(() => cluster.destroy());
        },
        destroy: () => {
          try {
            cluster.destroy(); // also stops a connect that is still retrying
          } catch {
            // closed already
          }
        },
      };
    };
    return wrap(make());
  }
  const make = () =>
    createClient({ url: options.urls[0], name, disableOfflineQueue: true, socket }).withTypeMapping(buffers);
  const wrap = (client: ReturnType<typeof make>): RedisLink => {
    client.on("error", onError);
    return {
      masterOf: () => "",
      send: (_key, args) => client.sendCommand(args, { typeMapping: buffers }) as Promise<Reply>,
      duplicate: () => wrap(make()),
      connect: async () => {
        await client.connect();
      },
      close: async () => {
        if (client.isOpen) await client.close().catch(() => client.destroy());
      },
      destroy: () => {
        try {
          client.destroy(); // also stops a connect that is still retrying
        } catch {
          // closed already
        }
      },
    };
  };
  return wrap(make());
}
