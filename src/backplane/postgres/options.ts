import { hostname } from "node:os";
import { defaultLogger, type Logger } from "../../log.js";

/** How long the message log keeps rows. Both limits apply; whichever trims more wins. */
export interface RetentionOptions {
  /** Rows older than this are trimmed. @default 600_000 (10 minutes) */
  maxAgeMs?: number;
  /** At most this many of the newest rows are kept. @default 1_000_000 */
  maxRows?: number;
  /** How often each node trims. @default 10_000 */
  intervalMs?: number;
  /** Rows deleted per statement, so a trim never holds many locks or blocks writers for long. @default 1000 */
  batchSize?: number;
}

/** Options shared by the backplane and the out-of-process publisher: where the log is and how writes batch. */
export interface LogWriterOptions {
  /** A PostgreSQL connection string (`postgres://user:password@host:port/database`). Required. */
  connectionString: string;
  /** The schema holding the backplane's tables; created by the migrations. @default "switchboard" */
  schema?: string;
  /** The most messages one batch (one INSERT, one transaction) carries. @default 500 */
  maxBatchMessages?: number;
  /** The most payload bytes one batch carries (a single larger message still goes alone). @default 1_048_576 */
  maxBatchBytes?: number;
  /** Publishes waiting for the writer beyond this many are rejected at once. @default 10_000 */
  maxQueuedMessages?: number;
  /**
   * A publish not committed within this time is rejected with BackplaneUnavailableError. The database
   * enforces it too (`statement_timeout`), so a rejected publish was not written. @default 10_000
   */
  publishTimeoutMs?: number;
  /** Connections in this process's pool. @default 10 (publisher: 2) */
  poolSize?: number;
  /** Where log events go. @default JSON lines on stdout at $LOG_LEVEL, else info (src/log.ts) */
  logger?: Logger;
  /**
   * How long a node may go without a heartbeat before it counts as dead. Presence queries ignore the
   * connections of dead nodes. @default 10_000
   */
  nodeTimeoutMs?: number;
}

/** Options of {@link postgres}. */
export interface PostgresBackplaneOptions extends LogWriterOptions {
  /** How often this node refreshes its heartbeat and sweeps dead nodes. @default 2000 */
  heartbeatIntervalMs?: number;
  /** How often the reader looks at the log without a wake-up (a lost NOTIFY costs this much latency). @default 250 */
  pollIntervalMs?: number;
  /** The most log rows one read fetches. @default 1000 */
  readBatchSize?: number;
  retention?: RetentionOptions;
  /** Run the migrations on start. Turn off where the schema is managed by `switchboard migrate`. @default true */
  migrate?: boolean;
  /** Shown in the node list. @default "<host name> pid <pid>" */
  description?: string;
  /**
   * How often this node checks whether other nodes' database sessions still hold their liveness locks.
   * A node whose process died (its sessions end with it) is swept within about this plus
   * `deadSessionGraceMs`, instead of at the heartbeat timeout. @default 250
   */
  livenessProbeIntervalMs?: number;
  /**
   * How long a node's liveness lock must stay free before the node is swept: long enough for a node whose
   * LISTEN connection alone dropped to take it again. @default 500
   */
  deadSessionGraceMs?: number;
  /** How long a node taking over a connection (stateful reconnect) waits for the old node's answer. @default 5000 */
  moveTimeoutMs?: number;
}

export type ResolvedWriterOptions = Required<Omit<LogWriterOptions, "logger">> & { logger: Logger };
export type ResolvedOptions = ResolvedWriterOptions &
  Required<Omit<PostgresBackplaneOptions, keyof LogWriterOptions | "retention">> & {
    retention: Required<RetentionOptions>;
  };

/** Validates and fills in defaults; a bad option throws an Error that names it. */
export function resolveWriterOptions(options: LogWriterOptions, defaultPoolSize = 10): ResolvedWriterOptions {
  if (options === null || typeof options !== "object") throw new Error("options must be an object.");
  const { connectionString } = options;
  if (typeof connectionString !== "string" || connectionString.trim() === "") {
    throw new Error("connectionString must be a non-empty PostgreSQL connection string.");
  }
  const schema = options.schema ?? "switchboard";
  // PostgreSQL truncates identifiers to 63 bytes; two names that differ only after that would collide.
  if (
    typeof schema !== "string" ||
    schema === "" ||
    Buffer.byteLength(schema) > 63 ||
    schema.includes("\0")
  ) {
    throw new Error("schema must be a non-empty name of at most 63 bytes.");
  }
  const logger = options.logger ?? defaultLogger();
  for (const level of ["debug", "info", "warn", "error"] as const) {
    if (typeof logger[level] !== "function") throw new Error(`logger.${level} must be a function.`);
  }
  return {
    connectionString,
    schema,
    logger,
    maxBatchMessages: integer("maxBatchMessages", options.maxBatchMessages, 500, 1, 100_000),
    maxBatchBytes: integer("maxBatchBytes", options.maxBatchBytes, 1_048_576, 1024),
    maxQueuedMessages: integer("maxQueuedMessages", options.maxQueuedMessages, 10_000, 1),
    publishTimeoutMs: integer("publishTimeoutMs", options.publishTimeoutMs, 10_000, 1),
    poolSize: integer("poolSize", options.poolSize, defaultPoolSize, 1, 1000),
    nodeTimeoutMs: integer("nodeTimeoutMs", options.nodeTimeoutMs, 10_000, 1),
  };
}

export function resolveOptions(options: PostgresBackplaneOptions): ResolvedOptions {
  const writer = resolveWriterOptions(options);
  const heartbeatIntervalMs = integer("heartbeatIntervalMs", options.heartbeatIntervalMs, 2000, 1);
  // Two missed heartbeats must not be enough to be declared dead.
  if (writer.nodeTimeoutMs < 2 * heartbeatIntervalMs) {
    throw new Error("nodeTimeoutMs must be at least twice heartbeatIntervalMs.");
  }
  const retention = options.retention ?? {};
  if (retention === null || typeof retention !== "object") throw new Error("retention must be an object.");
  const description = options.description ?? `${hostname()} pid ${process.pid}`;
  if (typeof description !== "string") throw new Error("description must be a string.");
  if (options.migrate !== undefined && typeof options.migrate !== "boolean") {
    throw new Error("migrate must be a boolean.");
  }
  return {
    ...writer,
    heartbeatIntervalMs,
    pollIntervalMs: integer("pollIntervalMs", options.pollIntervalMs, 250, 1),
    readBatchSize: integer("readBatchSize", options.readBatchSize, 1000, 1, 100_000),
    migrate: options.migrate ?? true,
    description,
    livenessProbeIntervalMs: integer("livenessProbeIntervalMs", options.livenessProbeIntervalMs, 250, 1),
    deadSessionGraceMs: integer("deadSessionGraceMs", options.deadSessionGraceMs, 500, 0),
    moveTimeoutMs: integer("moveTimeoutMs", options.moveTimeoutMs, 5000, 1),
    retention: {
      maxAgeMs: integer("retention.maxAgeMs", retention.maxAgeMs, 600_000, 1),
      maxRows: integer("retention.maxRows", retention.maxRows, 1_000_000, 1),
      intervalMs: integer("retention.intervalMs", retention.intervalMs, 10_000, 1),
      batchSize: integer("retention.batchSize", retention.batchSize, 1000, 1, 100_000),
    },
  };
}

function integer(name: string, value: unknown, fallback: number, min: number, max = 2 ** 31 - 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max} (got ${String(value)}).`);
  }
  return value;
}
