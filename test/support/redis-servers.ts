/**
 * Redis servers of a test's own, started from Debian's `redis-server` on free ports in a temporary directory:
 * one standalone server, or a Redis Cluster of three masters (each with a replica, so a master can fail
 * over). The machine's own Redis (6379) is never touched. Used by the Redis backplane's tests and the bench.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface RedisServer {
  port: number;
  process: ChildProcess | undefined;
}

export interface RedisServers {
  /** "host:port" of every server (masters first, for a cluster). */
  addresses: string[];
  /** For a standalone server: its redis:// URL. */
  url: string;
  cluster: boolean;
  servers: RedisServer[];
  /** Runs `redis-cli` against server `i` with `args`; resolves with its output. */
  cli(i: number, ...args: string[]): Promise<string>;
  /** Kills server `i` with SIGKILL. */
  kill(i: number): Promise<void>;
  /** Starts server `i` again on its port, with its data directory (AOF) as it was. */
  restart(i: number): Promise<void>;
  /** The index of the server that is master for `key`'s slot now. */
  masterFor(key: string): Promise<number>;
  stop(): Promise<void>;
}

export interface RedisServersOptions {
  /** A Redis Cluster of three masters (with a replica each, unless `replicas` is 0); else one standalone server. */
  cluster?: boolean;
  /** Replicas per master of a cluster: 1 (a master can fail over) or 0. @default 1 */
  replicas?: 0 | 1;
  /** `appendfsync` (the AOF is on): "always" makes an acknowledged write survive a crash. @default "always" */
  appendfsync?: "always" | "everysec" | "no";
  /** The `redis-server` binary. @default "redis-server" (on $PATH) */
  binary?: string;
}

/** Starts the servers and, for a cluster, creates it and waits until every slot is served. */
export async function startRedisServers(options: RedisServersOptions = {}): Promise<RedisServers> {
  const binary = options.binary ?? "redis-server";
  const cli = binary.replace(/redis-server$/, "redis-cli");
  const cluster = options.cluster ?? false;
  const dir = await mkdtemp(join(tmpdir(), "switchboard-test-redis-"));
  const replicas = options.replicas ?? 1;
  const count = cluster ? 3 * (1 + replicas) : 1;
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freePort(cluster);
    if (!ports.includes(port)) ports.push(port);
  }
  const servers: RedisServer[] = ports.map((port) => ({ port, process: undefined }));
  const launch = async (i: number) => {
    const { port } = servers[i]!;
    const args = [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--dbfilename",
      `dump-${port}.rdb`,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfilename",
      `appendonly-${port}.aof`,
      "--appenddirname",
      `aof-${port}`,
      "--appendfsync",
      options.appendfsync ?? "always",
      "--protected-mode",
      "no",
      ...(cluster
        ? [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            `nodes-${port}.conf`,
            "--cluster-node-timeout",
            "1500",
          ]
        : []),
    ];
    const child = spawn(binary, args, { stdio: "ignore" });
    servers[i]!.process = child;
    await untilAnswers(cli, port, child);
  };
  // A port found free may be taken by another test file's server before ours binds it: a first start that
  // fails tries again on another port (a restart keeps its port: its files are named after it).
  const firstLaunch = async (i: number) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(i);
      } catch (err) {
        if (attempt >= 5) throw err;
        servers[i]!.process?.kill("SIGKILL");
        let port = await freePort(cluster);
        while (servers.some((s) => s.port === port)) port = await freePort(cluster);
        servers[i]!.port = port;
        ports[i] = port;
      }
    }
  };
  await Promise.all(servers.map((_, i) => firstLaunch(i)));
  const cliOn = async (i: number, ...args: string[]) =>
    (await run(cli, ["-p", String(servers[i]!.port), ...args])).stdout;
  const addresses = ports.map((port) => `127.0.0.1:${port}`);
  if (cluster) {
    await run(cli, [
      "--cluster",
      "create",
      ...addresses,
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    await untilClusterOk(cliOn, servers.length);
  }
  const kill = async (i: number) => {
    const child = servers[i]!.process;
    servers[i]!.process = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
  };
  return {
    addresses,
    url: `redis://127.0.0.1:${ports[0]}`,
    cluster,
    servers,
    cli: cliOn,
    kill,
    async restart(i) {
      await launch(i);
      if (cluster) await untilClusterOk(cliOn, servers.length, (j) => servers[j]!.process !== undefined);
    },
    async masterFor(key) {
      const slot = Number((await cliOn(firstLive(servers), "cluster", "keyslot", key)).trim());
      const nodes = await cliOn(firstLive(servers), "cluster", "nodes");
      for (const line of nodes.split("\n")) {
        const [, address, flags, , , , , , ...slots] = line.split(" ");
        if (!flags?.includes("master") || flags.includes("fail")) continue;
        for (const range of slots) {
          const [from, to] = range.split("-").map(Number);
          if (slot >= from! && slot <= (to ?? from)!) {
            const port = Number(address!.split("@")[0]!.split(":")[1]);
            return servers.findIndex((s) => s.port === port);
          }
        }
      }
      throw new Error(`No master serves slot ${slot}.`);
    },
    async stop() {
      await Promise.all(servers.map((_, i) => kill(i)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function firstLive(servers: RedisServer[]): number {
  const i = servers.findIndex((s) => s.process !== undefined);
  if (i < 0) throw new Error("No Redis server is running.");
  return i;
}

async function untilAnswers(cli: string, port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    // It exited (its port was taken, most likely): no use waiting.
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server on port ${port} exited (code ${child.exitCode}).`);
    }
    try {
      const { stdout } = await run(cli, ["-p", String(port), "ping"]);
      if (stdout.trim() === "PONG") return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start.`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Until every running server says the cluster is ok (all slots served) and agrees on the masters. */
async function untilClusterOk(
  cli: (i: number, ...args: string[]) => Promise<string>,
  count: number,
  running: (i: number) => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const states = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        if (!running(i)) return true;
        try {
          return (await cli(i, "cluster", "info")).includes("cluster_state:ok");
        } catch {
          return false;
        }
      }),
    );
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error("The Redis Cluster did not become ok.");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A free TCP port; for a cluster node, one whose bus port (port + 10000) is free too. */
async function freePort(forCluster: boolean): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (!forCluster) return port;
    if (port + 10000 > 65535) continue;
    if (await isFree(port + 10000)) return port;
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
