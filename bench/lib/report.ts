/** The results table (terminal and Markdown) and docs/benchmarks.md with its chart. */
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ProfileSummary } from "../scenarios/profile.js";
import type { BenchOptions } from "./bench.js";
import { chartSvg } from "./chart.js";
import type { Machine } from "./environment.js";
import { formatValue, ratios, type Row } from "./results.js";
import { costTable, headlineTable } from "./summary.js";

const HEADER = ["#", "scenario", "load", "server", "measure", "value", "ours ÷ peer (same run)", "target"];

function cells(row: Row, rows: readonly Row[], index: number): string[] {
  const target = row.target ? `${row.target.met ? "met" : "MISSED"}: ${row.target.text}` : "";
  return [
    String(index + 1),
    `${row.scenario} ${row.title}`,
    row.load,
    row.label,
    row.note ?? `${row.metric} (${row.better} is better)`,
    formatValue(row.value, row.unit),
    ratios(row, rows),
    target,
  ];
}

/** One table, then each row's details under its number. */
export function printTable(rows: readonly Row[], log: (line: string) => void): void {
  const table = [HEADER, ...rows.map((row, i) => cells(row, rows, i))];
  const widths = HEADER.map((_, c) => Math.max(...table.map((line) => line[c]!.length)));
  const format = (line: string[]) =>
    line
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd();
  log(format(table[0]!));
  log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const line of table.slice(1)) log(format(line));
  log("");
  rows.forEach((row, i) => row.details && log(`${i + 1}. ${row.label}, ${row.load}: ${row.details}`));
}

function markdownTable(rows: readonly Row[]): string {
  const escape = (text: string) => text.replace(/\|/g, "\\|");
  const lines = [
    `| ${[...HEADER, "details"].join(" | ")} |`,
    `|${[...HEADER, "details"].map(() => "---").join("|")}|`,
    ...rows.map((row, i) => `| ${[...cells(row, rows, i), row.details].map(escape).join(" | ")} |`),
  ];
  return lines.join("\n");
}

const METHOD = `- Every server runs as real processes on this machine: ours is \`switchboard start --hubs bench/hubs.ts\`
  (TypeScript run through tsx, which costs start-up only: the code that runs is the JavaScript esbuild emits),
  the peers are \`bench/peers/socketio.ts\` (Socket.IO 4, WebSocket transport only, rooms per user id, with
  \`@socket.io/postgres-adapter\` on the same PostgreSQL, \`@socket.io/redis-adapter\` on the same Redis, or no
  adapter) and \`bench/peers/ws.ts\` (a bare \`ws\` server). Each server is started fresh, measured, and stopped
  before the next one starts, so none of them competes with another.
- The load clients (\`bench/load/\`) are the same for every server: \`ws\` WebSockets speaking the server's own
  protocol (SignalR JSON with negotiate and handshake; Socket.IO/engine.io v4; plain JSON arrays), one
  \`JSON.parse\` per message, in separate load processes (each at most ~9,500 sockets, on loopback source
  addresses 127.0.0.x). Their CPU is reported as \`load\`.
- The sender runs inside the sending server process (\`bench/peers/sender.ts\`, shared by all servers), started
  by a control client. Each message carries its send time from CLOCK_MONOTONIC (\`process.hrtime\`), which on
  Linux is one clock for every process of the machine, so a receiver in a load process subtracts it from its own
  reading: latency is send call → client handler. Fixed rates are open loop. "max" is a closed loop: at most
  5,000 messages sent but not yet acknowledged by the receivers (acks every 20 ms), so it measures the highest
  throughput reached without queues growing or losing messages (latency at max is mostly that window).
- Lost = sent − delivered (duplicates and reordering are counted apart), after the receivers drained (bounded).
- Payload: method \`n\` with \`[phase, seq, sentAt, 64-character string]\`. Each server gets an unrecorded warm-up
  phase first. CPU is % of one core over the phase (from /proc), per process; PG is all PostgreSQL backends.
- Memory: RSS and V8 heap after four full GCs 20 ms apart (\`--expose-gc\`, read inside the server on SIGUSR2), minus the same
  figures before any client connected, divided by the connections held. Kernel socket memory is not in RSS.
  RSS per connection leaves out V8's young generation (its resident size) at both readings: a connect burst
  grows it to ~25–32 MB in every server, and V8 gives it back only after seconds of quiet, so it says when RSS
  was read, not what the connections hold (a server whose start-up had grown it already looked ~1–2 KB per
  connection lighter at 10,000). The raw RSS is in the details.
  The same stats request (with its GCs) goes to every server's nodes, ours and the peers', before and after
  each send phase, so no server starts a phase with a cleaner heap than another.
- Our rows also give the backplane's own counters (\`stats()\`): SQL statements per delivered message, messages
  per append and rows per read.
- Scenario 8 uses light Server-Sent Events and long-polling clients (\`bench/load/clients.ts\`, \`overHttp\`: an
  event stream or a loop of polls on keep-alive sockets, one POST at a time). "Forwarded" receivers negotiate
  on their connection's node and send everything else to another node, which forwards each request: every
  request pays the hop, where a round-robin balancer makes two in three pay it.`;

export async function writeDocs(
  options: BenchOptions,
  rows: readonly Row[],
  machine: Machine,
  profile: ProfileSummary | undefined,
  minutes: number,
): Promise<string[]> {
  await mkdir(options.docsDir, { recursive: true });
  const svgPath = join(options.docsDir, "benchmarks.svg");
  const mdPath = join(options.docsDir, "benchmarks.md");
  await writeFile(
    svgPath,
    chartSvg(rows, `Switchboard vs peers, ${machine.date}, ${machine.cores} cores (same run)`),
  );
  const notesPath = "bench/notes.md";
  const notes = existsSync(notesPath) ? readFileSync(notesPath, "utf8").trim() : "";
  const args = process.argv.slice(2).join(" ");
  const text = `# Benchmarks

_Written by \`npm run bench${args ? ` -- ${args}` : ""}\` on ${machine.date} in ${minutes.toFixed(1)} minutes; do not edit by hand
(the notes at the end come from \`bench/notes.md\`)._

Every scenario runs our server and the peers one after the other in the same run, on the same machine, with the
same load clients and payloads. On a shared machine the ratios to the peers measured in the same run matter more
than the absolute numbers.

## Ratios first

Our headline measures divided by the peer's in the same run, against the targets of the open performance work
(below 1× is better for a latency or memory, above 1× for a throughput):

${headlineTable(rows) || "_This run measured none of them._"}

What each feature costs, as a ratio to its plain path, both measured in this run:

${costTable(rows) || "_This run measured none of them._"}

## Machine

| CPU | cores | memory | Node | PostgreSQL | Redis | load average (1 min) at start |
|---|---|---|---|---|---|---|
| ${machine.cpu} | ${machine.cores} | ${machine.memoryGiB} GiB | ${machine.node} | ${machine.postgres} | ${machine.redis} | ${machine.loadAverage.toFixed(2)} |

## Results

![Results chart](benchmarks.svg)

${markdownTable(rows)}

"ours ÷ peer" divides our value by the peer's measured at the same scenario and load: below 1 is better for a
latency or memory, above 1 for a throughput.
${profile ? `\n## Profile of our cross-node phase\n\nProfiles: \`${profile.directory}\` (open in Chrome DevTools or speedscope).\n\n${profile.text}\n` : ""}
## How it was measured

${METHOD}

## How to reproduce

\`\`\`sh
npm ci
npm run bench                 # everything, under 10 minutes; writes this file and benchmarks.svg
npm run bench -- --quick      # a subset under 2 minutes
npm run bench -- --scenarios 1 --servers ours,sio-redis --duration 20 --profile
npm run bench -- --help       # every option
\`\`\`

PostgreSQL: \`--database-url\` (or \`$DATABASE_URL\`), else the machine's own at 127.0.0.1:5432 if it answers, else an
embedded one. Redis: \`--redis-url\` (default redis://127.0.0.1:6379); without Redis its peer is skipped with a line
that says so. Our Redis Cluster backplane runs on a cluster of three masters (AOF \`everysec\`) that the bench starts
from Debian's \`redis-server\` for each scenario, on ports of its own.
${notes ? `\n## Notes\n\n${notes}\n` : ""}`;
  await writeFile(mdPath, text);
  return [mdPath, svgPath];
}
