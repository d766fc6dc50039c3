import { hostname } from "node:os";
import { defaultLogger, type Logger } from "../../log.js";

/** Options of {@link redis}: where Redis is, and the timings of the registry. */
export interface RedisBackplaneOptions {
  /** A standalone Redis: `redis://[user:password@]host:port[/db]` (or `rediss://`). One of `url` and `nodes`. */
  url?: string;
  /** A Redis Cluster: some of its nodes, as `host:port` or `redis://host:port`; the rest are discovered. */
  nodes?: string[];
  /** Treat `url` as one node of a Redis Cluster. @default true with `nodes`, else false */
  cluster?: boolean;
  /** Password (and `username`, for an ACL user) for the cluster's nodes; a `url` carries its own. */
  password?: string;
  username?: string;
  /** The prefix of every key, so several apps can share a Redis. @default "switchboard" */
  prefix?: string;
  /** How often this node refreshes its heartbeat, trims its inbox and sweeps dead nodes. @default 1000 */
  heartbeatIntervalMs?: number;
  /**
   * How long a node may go without a heartbeat before it counts as dead: sends and presence ignore its
   * connections from then on, and a live node removes them. @default 5000
   */
  nodeTimeoutMs?: number;
  /** A publish not accepted by Redis within this time is rejected with BackplaneUnavailableError. @default 10_000 */
  publishTimeoutMs?: number;
  /** The most messages one batch (one script call per receiving node) carries. @default 500 */
  maxBatchMessages?: number;
  /** Publishes waiting for the writer beyond this many are rejected at once. @default 10_000 */
  maxQueuedMessages?: number;
  /**
   * The most entries a node's inbox keeps (approximately) when the node stops reading it; a node trims
   * what it has read itself every heartbeat. @default 100_000
   */
  inboxMaxEntries?: number;
  /**
   * A send is confirmed only once this many replicas of the receiving node's master have it (`WAIT`), so
   * a failover loses no confirmed send (Redis replicates asynchronously otherwise). 0: the master's
   * acknowledgement is enough. @default 0
   */
  waitForReplicas?: number;
  /** Where log events go. @default JSON lines on stdout at $LOG_LEVEL, else info (src/log.ts) */
  logger?: Logger;
  /** Shown in the node list. @default "<host name> pid <pid>" */
  description?: string;
}

export interface ResolvedRedisOptions {
  urls: string[];
  cluster: boolean;
  password: string | undefined;
  username: string | undefined;
  prefix: string;
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  publishTimeoutMs: number;
  maxBatchMessages: number;
  maxQueuedMessages: number;
  inboxMaxEntries: number;
  waitForReplicas: number;
  logger: Logger;
  description: string;
}

/** Validates and fills in defaults; a bad option throws an Error that names it. */
export function resolveRedisOptions(options: RedisBackplaneOptions): ResolvedRedisOptions {
  if (options === null || typeof options !== "object") throw new Error("options must be an object.");
  const { url, nodes } = options;
  if ((url === undefined) === (nodes === undefined)) {
    throw new Error("Give exactly one of url (a standalone Redis) and nodes (a Redis Cluster).");
  }
  let urls: string[];
  if (url !== undefined) {
    if (typeof url !== "string" || !/^rediss?:\/\/./.test(url)) {
      throw new Error(`url must be a redis:// or rediss:// URL (got ${String(url)}).`);
    }
    urls = [url];
  } else {
    if (!Array.isArray(nodes) || nodes.length === 0) throw new Error("nodes must be a non-empty array.");
    urls = nodes.map((node) => {
      if (typeof node !== "string") throw new Error("nodes must hold host:port strings.");
      if (/^rediss?:\/\//.test(node)) return node;
      if (!/^[^\s/:]+:\d{1,5}$/.test(node)) {
        throw new Error(`nodes: '${node}' is neither host:port nor a redis:// URL.`);
      }
      return `redis://${node}`;
    });
  }
  if (options.cluster !== undefined && typeof options.cluster !== "boolean") {
    throw new Error("cluster must be a boolean.");
  }
  const prefix = options.prefix ?? "switchboard";
  // A brace would change which part of a key Redis Cluster hashes, and so which keys share a slot.
  if (typeof prefix !== "string" || prefix === "" || /[{}\s]/.test(prefix)) {
    throw new Error("prefix must be a non-empty string without braces or spaces.");
  }
  for (const name of ["password", "username", "description"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "string")
      throw new Error(`${name} must be a string.`);
  }
  const logger = options.logger ?? defaultLogger();
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof logger[level] !== "function") throw new Error(`logger.${level} must be a function.`);
  }
  const heartbeatIntervalMs = integer("heartbeatIntervalMs", options.heartbeatIntervalMs, 1000, 1);
  const nodeTimeoutMs = integer("nodeTimeoutMs", options.nodeTimeoutMs, 5000, 1);
  // Two missed heartbeats must not be enough to be declared dead.
  if (nodeTimeoutMs < 2 * heartbeatIntervalMs) {
    throw new Error("nodeTimeoutMs must be at least twice heartbeatIntervalMs.");
  }
  return {
    urls,
    cluster: options.cluster ?? nodes !== undefined,
    password: options.password,
    username: options.username,
    prefix,
    heartbeatIntervalMs,
    nodeTimeoutMs,
    publishTimeoutMs: integer("publishTimeoutMs", options.publishTimeoutMs, 10_000, 1),
    maxBatchMessages: integer("maxBatchMessages", options.maxBatchMessages, 500, 1, 100_000),
    maxQueuedMessages: integer("maxQueuedMessages", options.maxQueuedMessages, 10_000, 1),
    inboxMaxEntries: integer("inboxMaxEntries", options.inboxMaxEntries, 100_000, 100),
    waitForReplicas: integer("waitForReplicas", options.waitForReplicas, 0, 0, 16),
    logger,
    description: options.description ?? `${hostname()} pid ${process.pid}`,
  };
}

function integer(name: string, value: unknown, fallback: number, min: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max} (got ${String(value)}).`);
  }
  return value;
}
