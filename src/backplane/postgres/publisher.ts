import { BackplaneUnavailableError, type BackplanePublisher } from "../backplane.js";
import { storeMessage, takeStoredMessages } from "./stored-messages.js";
import { LogWriter } from "./log-writer.js";
import { SchemaNames } from "./names.js";
import { resolveWriterOptions, type LogWriterOptions } from "./options.js";
import { createLog } from "./postgres.log.js";
import * as presence from "./presence.js";
import { createPool, emptyStats, Sql, type PostgresBackplaneStats } from "./sql.js";

/** Options of {@link createPublisher}: where the cluster's log is, and how writes batch. */
export type PublisherOptions = LogWriterOptions;

/**
 * Publishes into a cluster's log from a process that is not a node (a worker, a cron job, a CLI). It
 * sends no heartbeats, holds no connections and reads nothing.
 */
export interface Publisher extends BackplanePublisher {
  /** Counters: statements sent, batches and messages written, wake-ups sent. */
  stats(): PostgresBackplaneStats;
}

/**
 * Creates a {@link Publisher}. It connects lazily on first use and expects the schema to exist (run
 * `switchboard migrate`, or start a node, first).
 * @throws Error naming the option when an option is invalid.
 */
export function createPublisher(options: PublisherOptions): Publisher {
  const resolved = resolveWriterOptions(options, 2);
  const names = new SchemaNames(resolved.schema);
  const log = createLog(resolved.logger);
  const counters = emptyStats();
  const pool = createPool({
    connectionString: resolved.connectionString,
    poolSize: resolved.poolSize,
    statementTimeoutMs: resolved.publishTimeoutMs,
    applicationName: "switchboard publisher",
    onError: (err) => log.poolError(err),
  });
  const sql = new Sql(pool, counters);
  const query = sql.query;
  const writer = new LogWriter(sql, names, resolved, log);
  let closing: Promise<void> | undefined;

  const guard = async <T>(run: () => Promise<T>): Promise<T> => {
    if (closing) throw new BackplaneUnavailableError("The publisher is closed.");
    return run().catch((err: unknown) => {
      throw err instanceof BackplaneUnavailableError
        ? err
        : new BackplaneUnavailableError(`The publisher's database failed: ${(err as Error).message}`, {
            cause: err,
          });
    });
  };

  return {
    send: (target, message) => writer.publish(target, message),
    publish: (target, message) => writer.publish(target, message),
    groupMembers: (hub, group) => guard(() => presence.groupMembers(query, names, hub, group)),
    storeMessage: (hub, key, message, ttlMs) =>
      guard(() => storeMessage(query, names, hub, key, message, ttlMs)),
    takeStoredMessages: (hub, key) => guard(() => takeStoredMessages(query, names, hub, key)),
    isUserConnected: (hub, userId) =>
      guard(
        async () =>
          (await presence.userConnections(query, names, hub, userId, resolved.nodeTimeoutMs)).length > 0,
      ),
    userConnections: (hub, userId) =>
      guard(() => presence.userConnections(query, names, hub, userId, resolved.nodeTimeoutMs)),
    stats: () => ({ ...counters }),
    close() {
      closing ??= (async () => {
        await writer.close("The publisher is closed.", true);
        await pool.end().catch(() => {});
      })();
      return closing;
    },
  };
}
