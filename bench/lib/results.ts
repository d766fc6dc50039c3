/** One line of the results table, and the helpers that turn measurements into one. */
import type { ServerKind } from "./servers.js";

export interface Row {
  /** 1–6: see bench/run.ts. */
  scenario: number;
  title: string;
  /** The load this row was measured at ("1,000/s", "max", "10,000 idle"…); rows with the same scenario and load are compared. */
  load: string;
  server: ServerKind["id"];
  label: string;
  ours: boolean;
  /** The headline: what the target and the ratio are about. */
  metric: string;
  value: number | undefined;
  unit: "ms" | "msg/s" | "queries/s" | "KB" | "conns" | "msgs";
  better: "lower" | "higher";
  /** Everything else measured (delivered, lost, percentiles, CPU…), as text. */
  details: string;
  /** Why there is no value (skipped or failed). */
  note?: string;
  target?: { text: string; met: boolean };
}

export function formatValue(value: number | undefined, unit: Row["unit"]): string {
  if (value === undefined) return "—";
  switch (unit) {
    case "ms":
      return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
    case "msg/s":
    case "queries/s":
      return value >= 1000 ? `${(value / 1000).toFixed(1)}k ${unit}` : `${Math.round(value)} ${unit}`;
    case "KB":
      return `${value.toFixed(1)} KB`;
    case "conns":
      return `${Math.round(value).toLocaleString("en-US")} conns`;
    case "msgs":
      return `${Math.round(value).toLocaleString("en-US")} msgs`;
  }
}

/** Short names for the ratio column. */
const SHORT: Record<ServerKind["id"], string> = {
  ours: "ours/PG",
  "ours-memory": "ours/mem",
  "ours-redis": "ours/Redis",
  "sio-pg": "sio+PG",
  "sio-redis": "sio+Redis",
  sio: "sio",
  ws: "ws",
};

export function shortName(id: ServerKind["id"]): string {
  return SHORT[id];
}

/**
 * Our value divided by each peer's measured at the same scenario and load in this run: below 1 is
 * better for a latency or memory, above 1 for a throughput (the table says which way is better).
 */
export function ratios(row: Row, rows: readonly Row[]): string {
  if (!row.ours || row.value === undefined) return "";
  const peers = rows.filter(
    (r) =>
      !r.ours && r.scenario === row.scenario && r.load === row.load && r.value !== undefined && r.value > 0,
  );
  return peers
    .map((peer) => `${(row.value! / peer.value!).toFixed(2)}× ${shortName(peer.server)}`)
    .join(", ");
}

/** CPU figures as "A 45%, B 80%, PG 60%, load 20%". */
export function cpuText(cpu: Record<string, number>): string {
  return Object.entries(cpu)
    .filter(([, value]) => value >= 0.5)
    .map(([name, value]) => `${name} ${Math.round(value)}%`)
    .join(", ");
}

export function ms(value: number): string {
  return value < 10 ? value.toFixed(2) : value.toFixed(1);
}
