#!/usr/bin/env node
// The switchboard command. `npm start` runs `switchboard demo`.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { migrate } from "../backplane/postgres/migrations.js";
import { browserClient, startNode, type RedisSettings } from "./commands/start.js";
import { openDatabase } from "./database.js";
import { cliLog, createLogger, defaultLogFormat, LOG_FORMATS, type LogFormat } from "./log.js";

export const usage = `Usage: switchboard <command> [options]

Commands:
  demo      PostgreSQL (embedded unless --database-url or $DATABASE_URL), three nodes as separate
            processes and a round-robin load balancer without sticky sessions in front; prints the URL
            to open. This is what \`npm start\` runs.
  start     One node. With --database-url (or $DATABASE_URL) it joins that cluster; without, it starts
            an embedded PostgreSQL and prints the URL other nodes can join with; --memory runs it alone;
            --redis-url or --redis-cluster puts the cluster on Redis instead of PostgreSQL.
            It serves the notification hub, Prometheus metrics at /metrics, and the HTTP API under /api
            when given an API key hash (or --demo-mode).
  migrate   Create or upgrade the backplane's tables in --database-url (or $DATABASE_URL), then exit.

Options:
  --port <n>           Port to listen on (default: $PORT, else 5000; 0 = any free port).
  --host <addr>        Address to listen on (default: 127.0.0.1).
  --node-url <url>     start: the URL other nodes reach this node at, to forward Server-Sent Events and
                       long-polling requests (default: $SWITCHBOARD_NODE_URL, else http://<host>:<port>,
                       with this machine's first external IPv4 address for --host 0.0.0.0 or ::).
  --database-url <u>   PostgreSQL connection string (default: $DATABASE_URL, else an embedded PostgreSQL).
  --data-dir <dir>     Where the embedded PostgreSQL keeps its files (default: .switchboard/pg).
  --schema <name>      The backplane's schema, so several apps can share a database (default: switchboard).
  --redis-url <url>    start: the Redis backplane on a standalone Redis (redis://[user:pass@]host:port).
  --redis-cluster <a>  start: the Redis backplane on a Redis Cluster: some of its nodes, as
                       host:port,host:port,... (the rest are discovered; credentials from $REDIS_USERNAME
                       and $REDIS_PASSWORD).
  --redis-prefix <p>   start: the prefix of the Redis backplane's keys (default: switchboard).
  --redis-wait-for-replicas <n>
                       start: replicas of a Redis master that must have a send before it is confirmed,
                       so that a failover loses no confirmed send (default: 0).
  --node-timeout <ms>  start: a node that hangs this long is swept with its connections (default: 10000
                       on PostgreSQL, 5000 on Redis; the heartbeat runs at a fifth of it). On PostgreSQL,
                       a node whose process died is swept within about a second.
  --drain-timeout <ms> start: how long a stop (SIGTERM) waits for its drain (connections unregistered, what
                       was sent to them delivered) before closing the clients anyway (default: 10000).
  --nodes <n>          How many nodes the demo starts (default: 3).
  --memory             start: no PostgreSQL, a single node with the in-memory backplane.
  --no-migrate         start: do not create or upgrade the schema on start.
  --hubs <module>      start: a module whose "hubs" (or default) export maps paths to hubs, with optional
                       userIdProvider and authenticate exports (default: the demo chat hub).
  --page               start: also serve the demo page.
  --admin              start: serve the admin page at /admin (it uses the HTTP API, so it needs an API key
                       hash, or --demo-mode).
  --demo-mode          start: anyone may register any identifier with the notification hub, and the HTTP
                       API needs no key. Demos only.
  --api-key-hash <h>   start: the hex SHA-256 of an HTTP API key; repeat for several (default:
                       $SWITCHBOARD_API_KEY_HASHES, comma-separated). Without any, /api is off.
  --log-level <level>  trace, debug, info, warn, error, fatal or silent (default: $LOG_LEVEL or info).
  --log-format <f>     pretty (short coloured lines) or json (default: pretty when stdout is a terminal,
                       else json).
  -h, --help           Show this text.
`;

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

class UsageError extends Error {}

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "node-url": { type: "string" },
        "database-url": { type: "string" },
        "data-dir": { type: "string" },
        schema: { type: "string" },
        "redis-url": { type: "string" },
        "redis-cluster": { type: "string" },
        "redis-prefix": { type: "string" },
        "redis-wait-for-replicas": { type: "string" },
        nodes: { type: "string" },
        "node-timeout": { type: "string" },
        "drain-timeout": { type: "string" },
        memory: { type: "boolean" },
        "no-migrate": { type: "boolean" },
        hubs: { type: "string" },
        page: { type: "boolean" },
        admin: { type: "boolean" },
        "demo-mode": { type: "boolean" },
        "api-key-hash": { type: "string", multiple: true },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    process.stderr.write(
      `switchboard: ${argumentError(err)}\nRun 'switchboard --help' for the commands and options.\n`,
    );
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || command === "help") {
    process.stdout.write(usage);
    return 0;
  }
  if (command === undefined) {
    process.stderr.write(usage);
    return 2;
  }
  try {
    const format = logFormat(values["log-format"]);
    const log = createLogger(logLevel(values["log-level"] ?? process.env.LOG_LEVEL ?? "info"), format);
    const dataDir = values["data-dir"] ?? join(".switchboard", "pg");
    const host = values.host ?? "127.0.0.1";
    switch (command) {
      case "migrate": {
        const url = values["database-url"] ?? process.env.DATABASE_URL;
        if (!url) throw new UsageError("migrate needs --database-url or $DATABASE_URL.");
        const applied = await migrate(url, values.schema);
        process.stdout.write(
          applied.length ? `Applied migrations ${applied.join(", ")}.\n` : "The schema is up to date.\n",
        );
        return 0;
      }
      case "start": {
        // Options are checked before anything starts.
        const nodePort = port(values.port ?? process.env.PORT ?? "5000");
        const nodeTimeoutMs =
          values["node-timeout"] === undefined
            ? undefined
            : positiveInteger("--node-timeout", values["node-timeout"]);
        const drainTimeoutMs =
          values["drain-timeout"] === undefined
            ? undefined
            : positiveInteger("--drain-timeout", values["drain-timeout"]);
        const redisSettings = redisOptions(values);
        if (redisSettings && (values.memory || values["database-url"])) {
          throw new UsageError("--redis-url and --redis-cluster go without --memory and --database-url.");
        }
        if (redisSettings && (values.schema !== undefined || values["no-migrate"])) {
          throw new UsageError(
            "--schema and --no-migrate are for PostgreSQL: the Redis backplane's keys take --redis-prefix.",
          );
        }
        const pageClient = values.page ? browserClient("--page") : undefined;
        const database =
          values.memory || redisSettings ? undefined : await openDatabase(values["database-url"], dataDir);
        if (database?.embedded) {
          cliLog.embeddedPostgres(
            log,
            `Embedded PostgreSQL is up. Other nodes join with --database-url ${database.url}`,
          );
        }
        // Listening before the node says it listens: a signal sent the moment it does must stop it cleanly.
        const stopRequested = untilSignal();
        let node;
        try {
          node = await startNode({
            port: nodePort,
            host,
            nodeUrl: values["node-url"] ?? process.env.SWITCHBOARD_NODE_URL,
            databaseUrl: database?.url,
            schema: values.schema,
            redis: redisSettings,
            nodeTimeoutMs,
            drainTimeoutMs,
            migrate: !values["no-migrate"],
            hubsModule: values.hubs,
            pageClient,
            admin: values.admin ?? false,
            demoMode: values["demo-mode"] ?? false,
            apiKeyHashes:
              values["api-key-hash"] ??
              process.env.SWITCHBOARD_API_KEY_HASHES?.split(",").filter(Boolean) ??
              [],
            projectRoot,
            log,
          });
        } catch (err) {
          // The embedded database is this process's child: it must not outlive a node that did not start.
          await database?.embedded?.stop();
          throw err;
        }
        await stopRequested;
        cliLog.shuttingDown(log, "Stopping: clients are told to reconnect.");
        await node.close();
        await database?.embedded?.stop();
        return 0;
      }
      case "demo": {
        const nodes = Number(values.nodes ?? "3");
        if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16)
          throw new UsageError(`--nodes must be a whole number from 1 to 16, not '${values.nodes}'.`);
        browserClient("switchboard demo"); // its nodes serve the page: a missing package is said here, once
        // The demo's balancer needs http-proxy-3, an optional peer: loaded only for this command.
        const { runDemo } = await import("./commands/demo.js").catch((err: unknown) => {
          if (!String(err).includes("'http-proxy-3'")) throw err;
          throw new Error("switchboard demo needs the package 'http-proxy-3' (npm install http-proxy-3).", {
            cause: err,
          });
        });
        const demo = await runDemo({
          port: port(values.port ?? process.env.PORT ?? "5000"),
          host,
          nodes,
          databaseUrl: values["database-url"],
          dataDir,
          schema: values.schema,
          log,
          logFormat: format,
        });
        const stopRequested = untilSignal(); // before the banner that tells a user (or a test) to press Ctrl-C
        process.stdout.write(
          `\nSwitchboard demo: open ${demo.url}/ (${nodes} nodes behind a round-robin load balancer); ` +
            `the admin page is at ${demo.url}/admin.\nCtrl-C stops everything.\n\n`,
        );
        await stopRequested;
        cliLog.shuttingDown(log, "Stopping the demo.");
        await demo.stop();
        return 0;
      }
      default:
        throw new UsageError(`Unknown command '${command}'.`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(
        `switchboard: ${err.message}\nRun 'switchboard --help' for the commands and options.\n`,
      );
      return 2;
    }
    throw err;
  }
}

/**
 * The Redis backplane's settings from --redis-url / --redis-cluster (a cluster's credentials from the
 * environment, not the command line, which `ps` shows), or undefined for PostgreSQL.
 */
function redisOptions(values: {
  "redis-url"?: string;
  "redis-cluster"?: string;
  "redis-prefix"?: string;
  "redis-wait-for-replicas"?: string;
}): RedisSettings | undefined {
  const url = values["redis-url"];
  const cluster = values["redis-cluster"];
  if (url === undefined && cluster === undefined) {
    for (const option of ["redis-prefix", "redis-wait-for-replicas"] as const) {
      if (values[option] !== undefined)
        throw new UsageError(`--${option} needs --redis-url or --redis-cluster.`);
    }
    return undefined;
  }
  if (url !== undefined && cluster !== undefined) {
    throw new UsageError(
      "Give one of --redis-url (a standalone Redis) and --redis-cluster (a Redis Cluster).",
    );
  }
  if (url !== undefined && !/^rediss?:\/\/./.test(url)) {
    throw new UsageError(`--redis-url must be a redis:// or rediss:// URL, not '${url}'.`);
  }
  const nodes = cluster?.split(",").map((node) => node.trim());
  if (nodes && nodes.some((node) => !/^[^\s/:]+:\d{1,5}$/.test(node))) {
    throw new UsageError(`--redis-cluster takes host:port,host:port,..., not '${cluster}'.`);
  }
  const settings: RedisSettings = url ? { url } : { nodes };
  if (values["redis-prefix"] !== undefined) settings.prefix = values["redis-prefix"];
  const replicas = values["redis-wait-for-replicas"];
  if (replicas !== undefined) {
    if (!/^\d+$/.test(replicas)) {
      throw new UsageError(`--redis-wait-for-replicas must be a whole number, not '${replicas}'.`);
    }
    settings.waitForReplicas = Number(replicas);
  }
  if (nodes) {
    if (process.env.REDIS_USERNAME) settings.username = process.env.REDIS_USERNAME;
    if (process.env.REDIS_PASSWORD) settings.password = process.env.REDIS_PASSWORD;
  }
  return settings;
}

/** parseArgs's complaint in a line a person can act on. */
function argumentError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const option = /'(-[^' ]*)/.exec(message)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) return `unknown option '${option}'.`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option && message.endsWith("argument missing"))
    return `option '${option}' needs a value.`;
  return message;
}

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function logFormat(format: string | undefined): LogFormat {
  if (format === undefined) return defaultLogFormat();
  if (!(LOG_FORMATS as readonly string[]).includes(format))
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}, not '${format}'.`);
  return format as LogFormat;
}

function logLevel(level: string): string {
  if (!LOG_LEVELS.includes(level))
    throw new UsageError(
      `--log-level (or $LOG_LEVEL) must be one of ${LOG_LEVELS.join(", ")}, not '${level}'.`,
    );
  return level;
}

function port(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535)
    throw new UsageError(`--port must be a port number (0-65535), not '${text}'.`);
  return value;
}

function positiveInteger(option: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0)
    throw new UsageError(`${option} must be a positive whole number, not '${text}'.`);
  return value;
}

/**
 * Resolves on the first SIGINT or SIGTERM, listening from the call on: until a listener exists, Node leaves
 * the default action, which ends the process without its clean stop. A second signal gets the default
 * action again (a stop that hangs can be cut short with a second Ctrl-C).
 */
function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`switchboard: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
