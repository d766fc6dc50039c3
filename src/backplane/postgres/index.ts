/**
 * @module
 * The PostgreSQL backplane: scale a Switchboard hub out over several nodes that share one database.
 *
 * @example
 * ```ts
 * import { postgres } from "switchboard/postgres";
 * const backplane = postgres({ connectionString: process.env.DATABASE_URL! });
 * ```
 */

// The backplane, its factory and options.
export { PostgresBackplane, postgres } from "./postgres-backplane.js";
export type { PostgresBackplaneOptions, RetentionOptions, LogWriterOptions } from "./options.js";
export type { PostgresBackplaneStats } from "./sql.js";
export type { BackplaneLogger } from "./postgres.log.js";

// Publishing from a process that is not a node.
export { createPublisher } from "./publisher.js";
export type { Publisher, PublisherOptions } from "./publisher.js";

// Schema management, for `switchboard migrate`.
export { migrate, migrations } from "./migrations.js";
export type { Migration } from "./migrations.js";

// A local PostgreSQL for development and tests.
export { startEmbeddedPostgres } from "./embedded.js";
export type { EmbeddedPostgres, EmbeddedPostgresOptions } from "./embedded.js";
