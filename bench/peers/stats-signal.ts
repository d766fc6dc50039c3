/**
 * Lets the bench read a server's memory from inside it: on SIGUSR2 the process runs a full GC (when
 * started with --expose-gc) and prints one JSON line `{"event":"BenchStats",…}` on stdout, where the
 * bench already reads the `Listening` line. The same for our node and for every peer, so heap figures
 * are taken the same way. SIGUSR2 is free in Node (SIGUSR1 is the inspector's).
 */

/** What the line carries; `extra` is server-specific (our backplane's statement counters). */
export interface BenchStats {
  event: "BenchStats";
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  extra?: unknown;
}

export function installStatsSignal(extra: () => unknown = () => undefined): void {
  process.on("SIGUSR2", () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const memory = process.memoryUsage();
    const line: BenchStats = {
      event: "BenchStats",
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      heapTotal: memory.heapTotal,
      external: memory.external,
      arrayBuffers: memory.arrayBuffers,
      extra: extra(),
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  });
}
