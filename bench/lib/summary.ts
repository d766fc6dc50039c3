/**
 * The two tables at the top of docs/benchmarks.md, computed from the run's rows: our headline ratios to the
 * peers against their targets, and what each feature costs next to its plain path.
 */
import { formatValue, type Row } from "./results.js";
import type { ServerKind } from "./servers.js";

type Server = ServerKind["id"];

/** A row of this run by scenario, load and server; the value of a figure read from its details, if asked. */
interface Pick {
  scenario: number;
  load: string;
  server: Server;
  /** Reads another figure than the row's value from its details, e.g. the connect + join rate. */
  detail?: { pattern: RegExp; unit: Row["unit"] };
}

interface Headline {
  what: string;
  ours: Pick;
  peer: Pick;
  /** ours ÷ peer must be at most (lower is better) or at least (higher) this. */
  target: number;
  better: "lower" | "higher";
}

const CONNECT_JOIN = { pattern: /connect \+ join ([\d,]+)\/s/, unit: "msg/s" as const };

/** The targets of the performance issue (15) and of the Redis Cluster backplane's (13). */
const HEADLINES: Headline[] = [
  {
    what: "cross-node max, 0 lost (PostgreSQL log)",
    ours: { scenario: 1, load: "max", server: "ours" },
    peer: { scenario: 1, load: "max", server: "sio-redis" },
    target: 1,
    better: "higher",
  },
  {
    what: "cross-node p99 at 1,000/s (PostgreSQL log)",
    ours: { scenario: 1, load: "1,000/s", server: "ours" },
    peer: { scenario: 1, load: "1,000/s", server: "sio-pg" },
    target: 1,
    better: "lower",
  },
  {
    what: "cross-node p99 at 1,000/s (PostgreSQL log)",
    ours: { scenario: 1, load: "1,000/s", server: "ours" },
    peer: { scenario: 1, load: "1,000/s", server: "sio-redis" },
    target: 2,
    better: "lower",
  },
  {
    what: "single node max, PostgreSQL backplane",
    ours: { scenario: 2, load: "max", server: "ours" },
    peer: { scenario: 2, load: "max", server: "sio" },
    target: 1,
    better: "higher",
  },
  {
    what: "connect + join a group (fan-out set-up, 3 nodes, WebSocket straight away)",
    ours: { scenario: 4, load: "10,000 members", server: "ours", detail: CONNECT_JOIN },
    peer: { scenario: 4, load: "10,000 members", server: "sio-redis", detail: CONNECT_JOIN },
    target: 1,
    better: "higher",
  },
  {
    what: "fan-out to 10,000 over 3 nodes, time to last",
    ours: { scenario: 4, load: "10,000 members", server: "ours" },
    peer: { scenario: 4, load: "10,000 members", server: "sio-redis" },
    target: 1,
    better: "lower",
  },
  {
    what: "RSS per idle connection at 10,000 (V8's young generation aside)",
    ours: { scenario: 3, load: "10,000 idle", server: "ours" },
    peer: { scenario: 3, load: "10,000 idle", server: "ws" },
    target: 1.1,
    better: "lower",
  },
  {
    what: "invocation round trip p99 at 1,000/s",
    ours: { scenario: 5, load: "1,000/s over 100 clients", server: "ours" },
    peer: { scenario: 5, load: "1,000/s over 100 clients", server: "sio" },
    target: 1.1,
    better: "lower",
  },
  {
    what: "cross-node p99 at 1,000/s, Redis Cluster backplane",
    ours: { scenario: 1, load: "1,000/s", server: "ours-redis" },
    peer: { scenario: 1, load: "1,000/s", server: "sio-redis" },
    target: 1.5,
    better: "lower",
  },
  {
    what: "cross-node max, Redis Cluster backplane",
    ours: { scenario: 1, load: "max", server: "ours-redis" },
    peer: { scenario: 1, load: "max", server: "sio-redis" },
    target: 1,
    better: "higher",
  },
];

/** A feature next to the same measure without it; both ours. */
interface Cost {
  feature: string;
  with: Pick;
  without: Pick;
}

const COSTS: Cost[] = [
  {
    feature: "stateful reconnect (p99 at 1,000/s)",
    with: { scenario: 6, load: "1,000/s, stateful", server: "ours" },
    without: { scenario: 6, load: "1,000/s, plain", server: "ours" },
  },
  {
    feature: "client result on the same node (p99), against a plain invocation's round trip",
    with: { scenario: 7, load: "1,000/s, same node", server: "ours" },
    without: { scenario: 5, load: "1,000/s over 100 clients", server: "ours" },
  },
  {
    feature: "client result across nodes (p99), against the same node",
    with: { scenario: 7, load: "1,000/s, cross-node", server: "ours" },
    without: { scenario: 7, load: "1,000/s, same node", server: "ours" },
  },
  {
    feature: "Server-Sent Events forwarded by another node (p99), against direct",
    with: { scenario: 8, load: "Server-Sent Events, 1,000/s, forwarded", server: "ours" },
    without: { scenario: 8, load: "Server-Sent Events, 1,000/s, direct", server: "ours" },
  },
  {
    feature: "long polling forwarded by another node (p99), against direct",
    with: { scenario: 8, load: "long polling, 1,000/s, forwarded", server: "ours" },
    without: { scenario: 8, load: "long polling, 1,000/s, direct", server: "ours" },
  },
  {
    feature: "sends from SQL (p99 at 500/s), against createPublisher",
    with: { scenario: 9, load: "SQL 500/s", server: "ours" },
    without: { scenario: 9, load: "publisher 500/s", server: "ours" },
  },
  {
    feature: "sends from SQL (max), against createPublisher",
    with: { scenario: 9, load: "SQL max", server: "ours" },
    without: { scenario: 9, load: "publisher max", server: "ours" },
  },
  {
    feature: "Redis Cluster backplane (cross-node p99 at 1,000/s), against PostgreSQL",
    with: { scenario: 1, load: "1,000/s", server: "ours-redis" },
    without: { scenario: 1, load: "1,000/s", server: "ours" },
  },
  {
    feature: "Redis Cluster backplane (cross-node max), against PostgreSQL",
    with: { scenario: 1, load: "max", server: "ours-redis" },
    without: { scenario: 1, load: "max", server: "ours" },
  },
  {
    feature: "PostgreSQL backplane on one node (max), against the memory backplane",
    with: { scenario: 2, load: "max", server: "ours" },
    without: { scenario: 2, load: "max", server: "ours-memory" },
  },
];

function find(rows: readonly Row[], pick: Pick): { value: number; unit: Row["unit"] } | undefined {
  const row = rows.find(
    (r) => r.scenario === pick.scenario && r.load === pick.load && r.server === pick.server,
  );
  if (row?.value === undefined) return undefined;
  if (!pick.detail) return { value: row.value, unit: row.unit };
  const match = pick.detail.pattern.exec(row.details);
  return match ? { value: Number(match[1]!.replace(/,/g, "")), unit: pick.detail.unit } : undefined;
}

const show = (found: { value: number; unit: Row["unit"] }) =>
  found.unit === "msg/s" && found.value < 5000
    ? `${Math.round(found.value)}/s`
    : formatValue(found.value, found.unit);

/** Markdown: the headline ratios of this run against their targets (rows the run did not measure are left out). */
export function headlineTable(rows: readonly Row[]): string {
  const lines = HEADLINES.flatMap((h) => {
    const ours = find(rows, h.ours);
    const peer = find(rows, h.peer);
    if (!ours || !peer || peer.value === 0) return [];
    const ratio = ours.value / peer.value;
    const met = h.better === "lower" ? ratio <= h.target : ratio >= h.target;
    const sign = h.better === "lower" ? "≤" : "≥";
    return [
      `| ${h.what} | ${show(ours)} | ${show(peer)} (${h.peer.server}) | ${ratio.toFixed(2)}× | ${sign} ${h.target}× | ${met ? "met" : "MISSED"} |`,
    ];
  });
  if (lines.length === 0) return "";
  return [
    "| measure | ours | peer (same run) | ours ÷ peer | target | |",
    "|---|---|---|---|---|---|",
    ...lines,
  ].join("\n");
}

/** Markdown: each feature's cost as a ratio to its plain path, both measured in this run. */
export function costTable(rows: readonly Row[]): string {
  const lines = COSTS.flatMap((c) => {
    const withIt = find(rows, c.with);
    const without = find(rows, c.without);
    if (!withIt || !without || without.value === 0) return [];
    return [
      `| ${c.feature} | ${show(withIt)} | ${show(without)} | ${(withIt.value / without.value).toFixed(2)}× |`,
    ];
  });
  if (lines.length === 0) return "";
  return ["| feature | with it | plain path | ratio |", "|---|---|---|---|", ...lines].join("\n");
}
