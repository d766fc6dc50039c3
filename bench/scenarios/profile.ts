/**
 * `--profile`: our cross-node max phase (or `--profile-rate`) once more, both nodes under `--cpu-prof`, then the profiles read
 * back: where each node's CPU time goes, by area (driver, protocol, backplane…) and by function (self
 * time). Profiling slows the nodes, so this phase's numbers are not in the table; its profiles stay in
 * bench/results/profiles/ for Chrome DevTools or speedscope.
 */
import { mkdirSync, readFileSync, readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { sourceAddresses, withServer, type Bench } from "../lib/bench.js";
import { backplaneText, runPhase, sendPlan } from "../lib/phase.js";
import { CpuMeter } from "../lib/procs.js";
import { nowMicros } from "../lib/histogram.js";
import { cpuText } from "../lib/results.js";
import { SERVERS } from "../lib/servers.js";
import type { ConnectResult } from "../load/worker.js";

export interface ProfileSummary {
  /** Markdown: the phase's figures, then per node the areas and the hottest functions. */
  text: string;
  directory: string;
}

interface CpuProfile {
  /** µs on CLOCK_MONOTONIC, like nowMicros(). */
  startTime: number;
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the stack a function belongs to, from its script URL. */
const AREAS: [RegExp, string][] = [
  [/node_modules\/pg(-[a-z]+)?\//, "pg driver"],
  [/node_modules\/ws\//, "ws"],
  [/node_modules\/@msgpack\//, "msgpack"],
  [/node_modules\/(pino|sonic-boom)/, "logging"],
  [/\/src\/backplane\//, "src/backplane"],
  [/\/src\/hub\//, "src/hub"],
  [/\/src\/transport\//, "src/transport"],
  [/\/src\/protocol\//, "src/protocol"],
  [/\/src\//, "src (other)"],
  [/\/bench\//, "bench sender"],
  [/node_modules\//, "other packages"],
];

function area(functionName: string, url: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "V8/native";
  for (const [pattern, name] of AREAS) if (pattern.test(url)) return name;
  return url.startsWith("node:") ? "Node internals" : "other";
}

/** Self time per area and per function of one profile between two instants (µs, CLOCK_MONOTONIC), in ms. */
function analyse(
  profile: CpuProfile,
  from: number,
  to: number,
): { total: number; areas: [string, number][]; functions: [string, number][] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from || at > to) return;
    const ms = delta / 1000;
    const frame = byId.get(id);
    if (!frame || frame.functionName === "(idle)") return;
    total += ms;
    const where = area(frame.functionName, frame.url);
    areas.set(where, (areas.get(where) ?? 0) + ms);
    const file = frame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, "$1/");
    // tsx's output keeps no useful line numbers for our .ts files; packages' do.
    const line = file.endsWith(".ts") ? "" : `:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || "(anonymous)"}${file ? ` ${file}${line}` : ""}`;
    functions.set(name, (functions.get(name) ?? 0) + ms);
  });
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  return { total, areas: top(areas, 10), functions: top(functions, 15) };
}

export async function runProfile(bench: Bench): Promise<ProfileSummary | undefined> {
  const directory = resolve("bench/results/profiles", new Date().toISOString().replace(/[:.]/g, "-"));
  mkdirSync(directory, { recursive: true });
  const env = { ...bench.env, ourExecArgv: ["--cpu-prof", "--cpu-prof-dir", directory] };
  const profiled: Bench = { ...bench, env, rows: [] };
  const { options } = bench;
  const lines: string[] = [];
  const pids: number[] = [];
  const window = { from: 0, to: 0 };
  bench.log(`Profiling our cross-node phase (--cpu-prof into ${directory})`);
  const scenario = { scenario: options.profileSingle ? 2 : 1, title: "profile" };
  const nodeCount = options.profileSingle || options.profileConnect ? 1 : 2;
  // Our PostgreSQL nodes, else the first of ours that is benched (Redis Cluster, or memory with --profile-single).
  const ours = options.servers.includes("ours")
    ? "ours"
    : options.servers.find((id) => id.startsWith("ours"));
  const server = SERVERS[ours ?? "ours"];
  await withServer(profiled, scenario, server, { nodes: nodeCount, workers: 1 }, async (nodes, [worker]) => {
    const sender = nodes[nodeCount - 1]!;
    pids.push(...nodes.map((n) => n.pid));
    if (options.profileConnect) window.from = nowMicros();
    const started = performance.now();
    const connected = await worker!.request<ConnectResult>({
      type: "connect",
      kind: "signalr",
      baseUrls: [nodes[0]!.url],
      firstUser: 0,
      count: options.clients,
      ...(options.profileConnect ? { group: "fanout" } : {}),
      localAddresses: sourceAddresses(0),
      concurrency: 50,
      timeoutMs: 30_000,
    });
    if (connected.connected !== options.clients)
      throw new Error(`clients failed to connect: ${connected.error}`);
    if (options.profileConnect) {
      window.to = nowMicros();
      const rate = options.clients / ((performance.now() - started) / 1000);
      lines.push(`Profiled connect + join (node under --cpu-prof): ${Math.round(rate)}/s.`);
      return;
    }
    await worker!.request({ type: "control", kind: "signalr", baseUrl: sender.url, timeoutMs: 30_000 });
    const cpu = new CpuMeter({
      A: () => [nodes[0]!.pid],
      ...(nodeCount > 1 ? { B: () => [sender.pid] } : {}),
      PG: bench.env.postgresPids,
      load: () => [worker!.pid],
    });
    const plan = (rate: number, durationMs: number) => sendPlan(options, rate, durationMs);
    const run = (rate: number, durationMs: number) =>
      runPhase({
        plan: plan(rate, durationMs),
        workers: [worker!],
        control: worker!,
        recipients: 1,
        cpu,
        nodes,
      });
    await run(2000, options.warmupMs);
    window.from = nowMicros();
    const result = await run(options.profileRate, options.durationMs);
    window.to = nowMicros();
    const throughput = result.deliverySeconds > 0 ? result.delivered / result.deliverySeconds : 0;
    const rate = options.profileRate ? `${options.profileRate.toLocaleString("en-US")}/s` : "max";
    lines.push(
      `Profiled phase (${rate}, nodes under --cpu-prof): ${Math.round(throughput).toLocaleString("en-US")} msg/s, ` +
        `delivered ${result.delivered.toLocaleString("en-US")} of ${result.report.sent.toLocaleString("en-US")}; ` +
        `CPU ${cpuText(result.cpu)}; ${backplaneText(result.backplane, result.delivered)}.`,
    );
  });
  // The nodes wrote their profiles on exit (withServer stopped them).
  // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (tsx's loader has its own).
  const files = readdirSync(directory).filter((f) => /\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (files.length === 0) {
    bench.log("  no profile was written");
    return undefined;
  }
  for (const file of files) {
    const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1]);
    const role =
      pids.length === 1
        ? "the node (receivers and sender)"
        : pid === pids[0]
          ? "node A (receivers, reads the log)"
          : pid === pids[1]
            ? "node B (sender, writes the log)"
            : `pid ${pid}`;
    const profile = JSON.parse(readFileSync(join(directory, file), "utf8")) as CpuProfile;
    const { total, areas, functions } = analyse(profile, window.from, window.to);
    const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)}%`;
    lines.push(
      "",
      `**${role}**: ${(total / 1000).toFixed(1)} s of CPU sampled during the profiled phase (idle excluded).`,
      "",
      `Areas: ${areas.map(([name, ms]) => `${name} ${pct(ms)}`).join(", ")}.`,
      "",
      "| self time | function |",
      "|---:|---|",
      ...functions.map(([name, ms]) => `| ${pct(ms)} | \`${name.replace(/\|/g, "\\|")}\` |`),
    );
  }
  const text = lines.join("\n");
  bench.log(text);
  return { text, directory: relative(process.cwd(), directory) };
}
