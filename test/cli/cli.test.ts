// The switchboard command as a person meets it: run as a process, from a checkout that was never built (no
// dist/), with its help, and with mistakes it answers in one line that names the option and the way out.
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/hub-client.js";

const bin = fileURLToPath(new URL("../../bin/switchboard.js", import.meta.url));

/** Runs the CLI without blocking this process (a test may hold a port the CLI wants). */
function runAsync(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("close", (code) => resolve({ code, stderr }));
  });
}

function run(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const hint = "Run 'switchboard --help' for the commands and options.\n";

describe("switchboard", () => {
  it("--help prints the usage and exits 0, built or not", () => {
    const { code, stdout, stderr } = run("--help");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: switchboard <command> \[options\]/);
    expect(stderr).toBe("");
  });

  it.each<[string, string[], string]>([
    ["an unknown option", ["start", "--bogus"], "switchboard: unknown option '--bogus'.\n"],
    ["an option without its value", ["start", "--port"], "switchboard: option '--port' needs a value.\n"],
    [
      "a value for an option that takes none",
      ["start", "--memory=yes"],
      "switchboard: Option '--memory' does not take an argument\n",
    ],
    [
      "an unknown log level",
      ["start", "--memory", "--log-level", "loud"],
      "switchboard: --log-level (or $LOG_LEVEL) must be one of trace, debug, info, warn, error, fatal, silent, not 'loud'.\n",
    ],
    ["an unknown command", ["frobnicate"], "switchboard: Unknown command 'frobnicate'.\n"],
    [
      "a Redis Cluster address without a port",
      ["start", "--redis-cluster", "10.0.0.1:7000,localhost"],
      "switchboard: --redis-cluster takes host:port,host:port,..., not '10.0.0.1:7000,localhost'.\n",
    ],
    [
      "two backplanes at once",
      ["start", "--redis-url", "redis://127.0.0.1:6379", "--memory"],
      "switchboard: --redis-url and --redis-cluster go without --memory and --database-url.\n",
    ],
    [
      "PostgreSQL's schema with the Redis backplane",
      ["start", "--redis-url", "redis://127.0.0.1:6379", "--schema", "app"],
      "switchboard: --schema and --no-migrate are for PostgreSQL: the Redis backplane's keys take --redis-prefix.\n",
    ],
    [
      "a replica count that is not a whole number",
      ["start", "--redis-cluster", "10.0.0.1:7000", "--redis-wait-for-replicas", "one"],
      "switchboard: --redis-wait-for-replicas must be a whole number, not 'one'.\n",
    ],
    [
      "a port out of range",
      ["start", "--memory", "--port", "70000"],
      "switchboard: --port must be a port number (0-65535), not '70000'.\n",
    ],
  ])("refuses %s in one line, exit code 2", (_, args, message) => {
    const { code, stdout, stderr } = run(...args);
    expect(code).toBe(2);
    expect(stderr).toBe(message + hint);
    expect(stdout).toBe("");
  });

  describe("with its port already taken", () => {
    let holder: Server;
    let taken: number;
    beforeAll(async () => {
      holder = createServer();
      await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
      taken = (holder.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => holder.close(() => resolve())));

    it("start says so, names the port and the way out, and exits 1", async () => {
      const { code, stderr } = await runAsync(
        "start",
        "--memory",
        "--log-level",
        "silent",
        "--port",
        String(taken),
      );
      expect(code).toBe(1);
      expect(stderr).toBe(
        `switchboard: port ${taken} on 127.0.0.1 is already in use: stop what holds it, or choose another with --port.\n`,
      );
    });

    it("demo says so before it starts a database or a node", async () => {
      const { code, stderr } = await runAsync("demo", "--log-level", "silent", "--port", String(taken));
      expect(code).toBe(1);
      expect(stderr).toBe(
        `switchboard: port ${taken} on 127.0.0.1 is already in use: stop what holds it, or choose another with --port.\n`,
      );
    });
  });

  describe("--log-format", () => {
    /** Starts a memory node, returns its stdout up to the Listening line, and stops it. */
    async function firstLines(format: string): Promise<string> {
      const child = spawn(
        process.execPath,
        [bin, "start", "--memory", "--port", "0", "--log-level", "info", "--log-format", format],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      child.stdout.setEncoding("utf8");
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (chunk: string) => {
          stdout += chunk;
          if (stdout.includes("listening on")) resolve();
        });
        child.on("exit", () => reject(new Error(`the node exited before it listened:\n${stdout}`)));
      });
      child.kill("SIGTERM");
      return stdout;
    }

    it("pretty: one short line per event, no JSON", async () => {
      const out = await firstLines("pretty");
      const line = out.split("\n").find((l) => l.includes("listening on"))!;
      expect(line).toMatch(
        /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Switchboard node listening on http:\/\/127\.0\.0\.1:\d+ /,
      );
      expect(() => JSON.parse(line)).toThrow();
    });

    it("json: one JSON record per line, as log collectors want", async () => {
      const out = await firstLines("json");
      const line = out.split("\n").find((l) => l.includes("listening on"))!;
      expect(JSON.parse(line)).toMatchObject({ event: "Listening", level: 30 });
    });

    it("refuses a format it does not know", () => {
      const { code, stderr } = run("start", "--memory", "--log-format", "loud");
      expect(code).toBe(2);
      expect(stderr).toBe(`switchboard: --log-format must be one of pretty, json, not 'loud'.\n${hint}`);
    });
  });

  describe("demo, stopped with Ctrl-C", () => {
    it("stops its nodes, then its database, and nothing warns on the way out", async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "switchboard-demo-"));
      try {
        // detached: a process group of its own, so the test can send it Ctrl-C as a terminal would.
        const child = spawn(
          process.execPath,
          [
            bin,
            "demo",
            "--port",
            "0",
            "--nodes",
            "2",
            "--data-dir",
            dataDir,
            "--log-level",
            "info",
            "--log-format",
            "json",
          ],
          { stdio: ["ignore", "pipe", "pipe"], detached: true },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
        await eventually(() => stdout.includes("Switchboard demo: open"), 60_000, "the demo's banner");
        // From here on, the way out (demo mode's own warning at start-up is not one of them).
        const [outBefore, errBefore] = [stdout.length, stderr.length];
        process.kill(-child.pid!, "SIGINT"); // the terminal's Ctrl-C goes to the whole process group
        expect(await exited).toBe(0);
        const records = `${stdout.slice(outBefore)}\n${stderr.slice(errBefore)}`
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { level: number; msg: string });
        expect(records.filter((r) => r.level >= 40).map((r) => r.msg)).toEqual([]);
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    }, 120_000);
  });
});
