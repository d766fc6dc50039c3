/**
 * The databases the bench runs against, the machine it runs on, and the clean-up of both: a fresh
 * schema for our backplane, the Socket.IO attachments table, and an embedded PostgreSQL if we started one.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import pg from "pg";
import { createClient } from "redis";
import { findSystemProgram } from "../../test/support/system-programs.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/backplane/postgres/embedded.js";
import { SOCKET_IO_TABLE } from "../peers/socketio-table.js";
import { clusterPids, parentPid, pidsNamed } from "./procs.js";
import type { BenchOptions } from "./bench.js";
import type { Environment } from "./servers.js";

/** The machine's own PostgreSQL on this kind of machine (see the env notes): tried before an embedded one. */
const LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/test";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  postgres: string;
  redis: string;
  date: string;
  /** Other work on the machine when the bench started (it shares the cores). */
  loadAverage: number;
}

export interface Prepared {
  env: Environment;
  machine: Machine;
  /** Drops what the bench created and stops what it started. Safe to call twice. */
  cleanup(): Promise<void>;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on("error", () => {});
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisVersion(url: string): Promise<string> {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on("error", () => {});
  await client.connect();
  try {
    const info = await client.info("server");
    return /redis_version:(\S+)/.exec(info)?.[1] ?? "unknown";
  } finally {
    await client.quit().catch(() => {});
  }
}

export async function prepare(options: BenchOptions, log: (line: string) => void): Promise<Prepared> {
  let embedded: EmbeddedPostgres | undefined;
  let databaseUrl = options.databaseUrl;
  if (databaseUrl === undefined) {
    try {
      await query(LOCAL_POSTGRES, "SELECT 1");
      databaseUrl = LOCAL_POSTGRES;
    } catch {
      log("No PostgreSQL at 127.0.0.1:5432: starting an embedded one (.switchboard/bench-pg).");
      embedded = await startEmbeddedPostgres({ dataDir: ".switchboard/bench-pg" });
      databaseUrl = embedded.url;
    }
  }
  const [{ server_version: version }] = (await query<{ server_version: string }>(
    databaseUrl,
    "SHOW server_version",
  )) as [{ server_version: string }];
  let redis = "not running";
  let redisMissing: string | undefined;
  try {
    redis = await redisVersion(options.redisUrl);
  } catch (err) {
    redisMissing = `no Redis answered at ${options.redisUrl} (${err instanceof Error ? err.message : String(err)})`;
    log(`Redis peers are skipped: ${redisMissing}.`);
  }
  const redisServer = await findSystemProgram({
    name: "redis-server",
    path: "/usr/bin/redis-server",
    aptPackage: "redis-server",
  });
  if (redisServer.missing) log(`Our Redis Cluster backplane is skipped: ${redisServer.missing}`);
  // A backend's parent is the postmaster: its children are this server's processes, and only those count.
  const [{ pid }] = (await query<{ pid: number }>(databaseUrl, "SELECT pg_backend_pid() AS pid")) as [
    { pid: number },
  ];
  const postmaster = parentPid(pid);
  const schema = `bench_${randomBytes(4).toString("hex")}`;
  const url = databaseUrl;
  let cleaned = false;
  return {
    env: {
      databaseUrl: url,
      schema,
      redisUrl: options.redisUrl,
      redisMissing,
      redisServer,
      postgresPids: () => (postmaster ? clusterPids(postmaster) : pidsNamed(["postgres"])),
      ourExecArgv: [],
    },
    machine: {
      cpu: cpuModel(),
      cores: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      postgres: `${version}${embedded ? " (embedded)" : ""}`,
      redis,
      date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
      loadAverage: loadavg()[0] ?? 0,
    },
    async cleanup() {
      if (cleaned) return;
      cleaned = true;
      await query(url, `DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`).catch(() => {});
      await query(url, `DROP TABLE IF EXISTS ${SOCKET_IO_TABLE}`).catch(() => {});
      await embedded?.stop();
    },
  };
}

function cpuModel(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("model name"));
    return line?.split(":")[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  } catch {
    return cpus()[0]?.model ?? "unknown";
  }
}
