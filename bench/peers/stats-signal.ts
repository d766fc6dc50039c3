/**
 * Lets the bench read a server's memory from inside it: on SIGUSR2 the process runs full GCs (when
 * started with --expose-gc) and prints one JSON line `{"event":"BenchStats",…}` on stdout, where the
 * bench already reads the `Listening` line. The same for our node and for every peer, so heap figures
 * are taken the same way. SIGUSR2 is free in Node (SIGUSR1 is the inspector's).
 */

import { getHeapSpaceStatistics } from "node:v8";

/** What the line carries; `extra` is server-specific (our backplane's statement counters). */
export interface BenchStats {
  event: "BenchStats";
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /**
   * V8's young generation as resident now (new space and its large objects, physical size). A connect
   * burst grows it to tens of MB in every server, and V8 shrinks it back only after seconds of quiet: part
   * of RSS that tells when it was read, not what the connections hold.
   */
  young: number;
  arrayBuffers: number;
  extra?: unknown;
}

export function installStatsSignal(extra: () => unknown = () => undefined): void {
  process.on("SIGUSR2", () => void report(extra));
}

/** Full GCs this many times, this far apart, before reading the memory. */
const GC_ROUNDS = 4;
const GC_PAUSE_MS = 20;

async function report(extra: () => unknown): Promise<void> {
  // One GC right after a burst of connects leaves V8's young generation grown (up to 16 MB) and freed
  // pages not yet returned to the system: RSS then varied by ~1 KB per connection from run to run, for
  // every server alike. A few rounds apart let both settle.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let round = 0; gc && round < GC_ROUNDS; round++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, GC_PAUSE_MS));
  }
  const memory = process.memoryUsage();
  const line: BenchStats = {
    event: "BenchStats",
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    heapTotal: memory.heapTotal,
    external: memory.external,
    arrayBuffers: memory.arrayBuffers,
    young: getHeapSpaceStatistics()
      .filter((space) => space.space_name === "new_space" || space.space_name === "new_large_object_space")
      .reduce((sum, space) => sum + space.physical_space_size, 0),
    extra: extra(),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
