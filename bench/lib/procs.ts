/**
 * Every process the bench starts goes through here, so every one of them is stopped at the end: on a
 * normal finish, on a failure, and on Ctrl-C (SIGTERM first, SIGKILL after a grace period, and a
 * last synchronous SIGKILL on exit). Load workers also exit by themselves when their IPC channel closes.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { spawnNode } from "../../src/cli/node-process.js";
import type { BenchStats } from "../peers/stats-signal.js";
import type { DoneEvent, WorkerRequest } from "../load/worker.js";

const children = new Set<ChildProcess>();
const GRACE_MS = 5000;

function track(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}

/** SIGTERM, then SIGKILL for whatever has not exited after the grace period. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), GRACE_MS);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map(stopProcess));
}

const interruptHooks: (() => Promise<void>)[] = [];

/** Work to do after the children stopped when the bench is interrupted (dropping its schema). */
export function onInterrupt(hook: () => Promise<void>): void {
  interruptHooks.push(hook);
}

/** Ctrl-C and kill stop the children before the bench exits; a crash kills them on the way out. */
export function installCleanup(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\n${signal}: stopping ${children.size} process(es)…\n`);
    void stopAll()
      .then(() => Promise.allSettled(interruptHooks.map((hook) => hook())))
      .finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.on("exit", () => {
    for (const child of children) child.kill("SIGKILL");
  });
}

/** A server process, ours or a peer's. */
export interface ServerHandle {
  url: string;
  pid: number;
  /** Asks the process for its memory (after full GCs) and counters; see peers/stats-signal.ts. */
  stats(): Promise<BenchStats>;
  stop(): Promise<void>;
}

/** Lines of a child's stdout, with a way to wait for the next BenchStats line. */
function statsReader(child: ChildProcess): { onLine(line: string): void; next(): Promise<BenchStats> } {
  const waiters: ((stats: BenchStats) => void)[] = [];
  return {
    onLine(line) {
      if (!line.includes('"BenchStats"')) return;
      try {
        const stats = JSON.parse(line) as BenchStats;
        waiters.shift()?.(stats);
      } catch {
        // another line that happens to contain the word
      }
    },
    next() {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no BenchStats line within 20 s")), 20_000);
        waiters.push((stats) => {
          clearTimeout(timer);
          resolve(stats);
        });
        child.kill("SIGUSR2");
      });
    },
  };
}

/**
 * Our node: `switchboard start` from source through tsx (TypeScript costs only start-up; the code that
 * runs is the same JavaScript esbuild emits), with the bench hub module and --expose-gc.
 */
export async function startOurs(args: string[], extraExecArgv: string[] = []): Promise<ServerHandle> {
  // The reader needs the child, which exists only once spawnNode resolves; lines before that are not stats.
  const holder: { reader?: ReturnType<typeof statsReader> } = {};
  const node = await spawnNode(
    ["--hubs", "bench/hubs.ts", "--log-level", "info", ...args],
    // stdout lines and stderr chunks both come here; only BenchStats lines matter once it listens.
    (line) => holder.reader?.onLine(line),
    { execArgv: ["--import", "tsx", "--expose-gc", ...extraExecArgv] },
  );
  track(node.child);
  const started = statsReader(node.child);
  holder.reader = started;
  return { url: node.url, pid: node.pid, stats: () => started.next(), stop: () => stopProcess(node.child) };
}

/** A peer server script from bench/peers/, started the same way and read the same way. */
export function startPeer(script: string, args: string[]): Promise<ServerHandle> {
  const child = spawn(process.execPath, ["--import", "tsx", "--expose-gc", script, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  const reader = statsReader(child);
  const errors: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => errors.length < 20 && errors.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${script} did not listen within 30 s`)), 30_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      void stopProcess(child);
      reject(err);
    };
    child.once("exit", (code) => fail(new Error(`${script} exited (${code}): ${errors.join("")}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      reader.onLine(line);
      if (!line.includes('"Listening"')) return;
      const { url } = JSON.parse(line) as { url: string };
      clearTimeout(timer);
      child.removeAllListeners("exit");
      resolve({ url, pid: child.pid!, stats: () => reader.next(), stop: () => stopProcess(child) });
    });
  });
}

/** A load process (load/worker.ts) and its request/answer channel. */
export interface WorkerHandle {
  pid: number;
  request<T extends object>(request: WorkerRequest, timeoutMs?: number): Promise<T>;
  onDone(listener: (event: DoneEvent) => void): void;
  stop(): Promise<void>;
}

export function startWorker(): WorkerHandle {
  const child = fork("bench/load/worker.ts", [], { execArgv: ["--import", "tsx"], stdio: "inherit" });
  track(child);
  let nextId = 0;
  const pending = new Map<number, { resolve(value: object): void; reject(err: Error): void }>();
  let doneListener: (event: DoneEvent) => void = () => {};
  child.on("message", (message: { id?: number; ok?: boolean; error?: string; type?: string }) => {
    if (message.type === "done") return doneListener(message as DoneEvent);
    const waiter = pending.get(message.id ?? -1);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.ok) waiter.resolve(message);
    else waiter.reject(new Error(`load worker: ${message.error}`));
  });
  child.once("exit", (code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`load worker exited (${code})`));
    pending.clear();
  });
  return {
    pid: child.pid!,
    request<T extends object>(request: WorkerRequest, timeoutMs = 120_000) {
      return new Promise<T>((resolve, reject) => {
        const id = nextId++;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`load worker: no answer to ${request.type} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, {
          resolve: (value) => (clearTimeout(timer), resolve(value as T)),
          reject: (err) => (clearTimeout(timer), reject(err)),
        });
        child.send({ id, request });
      });
    },
    onDone(listener) {
      doneListener = listener;
    },
    stop: () => stopProcess(child),
  };
}

/** CPU time (user + system) of a process in seconds, from /proc; 0 once it has gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Fields 14 and 15 of stat(5), counted after the command name: utime and stime, in 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** The pids of every process with one of these command names (PostgreSQL's backends, Redis). */
export function pidsNamed(names: readonly string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (names.includes(readFileSync(`/proc/${entry}/comm`, "utf8").trim())) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** The parent pid of a process, from /proc; undefined once it has gone. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/**
 * A PostgreSQL server's processes: its postmaster and the postmaster's children (backends, WAL writer…).
 * Other PostgreSQL servers on the machine (tests' embedded ones) are left out.
 */
export function clusterPids(postmaster: number): number[] {
  const pids = [postmaster];
  for (const entry of readdirSync("/proc")) {
    if (/^\d+$/.test(entry) && parentPid(Number(entry)) === postmaster) pids.push(Number(entry));
  }
  return pids;
}

/** CPU use of groups of processes over an interval, in % of one core. */
export class CpuMeter {
  private readonly start = new Map<string, number>();
  private startedAt = 0;

  constructor(private readonly groups: Record<string, () => number[]>) {}

  begin(): void {
    this.startedAt = performance.now();
    for (const [name, pids] of Object.entries(this.groups)) this.start.set(name, total(pids()));
  }

  /** Percent of one core per group since begin(). */
  end(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const result: Record<string, number> = {};
    for (const [name, pids] of Object.entries(this.groups)) {
      result[name] = seconds > 0 ? (100 * (total(pids()) - (this.start.get(name) ?? 0))) / seconds : 0;
    }
    return result;
  }
}

function total(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}
