import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createRequire } from "node:module";
import { dirname, extname, join } from "node:path";

/** A Switchboard node running as a child process (`switchboard start`), as the demo and the cluster tests run them. */
export interface NodeProcess {
  url: string;
  nodeId: string;
  pid: number;
  child: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** SIGTERM: the node tells its clients to reconnect and stops. */
  stop(): Promise<void>;
  /** SIGKILL: the node dies without a word, as in a crash. */
  kill(): Promise<void>;
}

/** main.ts when we run from source, main.js when built. */
const here = fileURLToPath(import.meta.url);
const cliScript = join(dirname(here), `main${extname(here)}`);

/**
 * The Node options for a child that runs one of our scripts: ours, which carry the TypeScript loader when we
 * run from source under `tsx` or `--import tsx`; and the loader itself when we run from source without it
 * on the command line (bin/switchboard.js registers tsx from code, which a child does not inherit).
 */
export function childExecArgv(): string[] {
  const fromSource = extname(here) === ".ts";
  const hasLoader = process.execArgv.some((arg) => arg.includes("tsx"));
  // By its resolved location: a bare "tsx" would be looked up from the working directory.
  if (!fromSource || hasLoader) return process.execArgv;
  return [...process.execArgv, "--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href];
}

/**
 * Starts `switchboard start <args>` in a new process and resolves once it listens. Its log lines go to
 * `onLog`; the first `Listening` event gives its URL, so the log level must be `info` or lower (the
 * default here, whatever LOG_LEVEL says).
 */
export function spawnNode(
  args: string[],
  onLog: (line: string) => void = () => {},
  options: { execArgv?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<NodeProcess> {
  // process.execArgv carries the TypeScript loader when we run from source (tsx), so the child does too;
  // a test runner passes its own (`--import tsx`).
  const execArgv = options.execArgv ?? childExecArgv();
  // The Listening line is logged at info: never let an inherited LOG_LEVEL hide it.
  if (!args.includes("--log-level")) args = [...args, "--log-level", "info"];
  // Its lines are read as JSON, whatever the terminal.
  args = [...args, "--log-format", "json"];
  const child = spawn(process.execPath, [...execArgv, cliScript, "start", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
  });
  const exited = new Promise<number | NodeJS.Signals>((resolve) =>
    child.once("exit", (code, signal) => resolve(signal ?? code ?? 0)),
  );
  const stderr: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr.push(chunk.toString());
    onLog(chunk.toString());
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    let started = false;
    lines.on("line", (line) => {
      onLog(line);
      if (started) return;
      try {
        const entry = JSON.parse(line) as { event?: string; url?: string; nodeId?: string };
        if (entry.event !== "Listening" || !entry.url || !entry.nodeId) return;
        started = true;
        const signalAndWait = async (signal: NodeJS.Signals) => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          await exited;
        };
        resolve({
          url: entry.url,
          nodeId: entry.nodeId,
          pid: child.pid!,
          child,
          exited,
          stop: () => signalAndWait("SIGTERM"),
          kill: () => signalAndWait("SIGKILL"),
        });
      } catch {
        // not a JSON log line
      }
    });
    void exited.then((code) => {
      if (!started) reject(new Error(`The node exited (${code}) before it listened.\n${stderr.join("")}`));
    });
  });
}
