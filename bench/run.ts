/**
 * `npm run bench`: every scenario against our server and the peers, one after the other in
 * this invocation, with the same load clients and payloads; prints one table and writes
 * docs/benchmarks.md with an SVG chart. Every process it starts is stopped at the end, on failure and on
 * Ctrl-C; every loop is bounded in count and time; all traffic stays on loopback.
 */
import type { Bench } from "./lib/bench.js";
import { prepare } from "./lib/environment.js";
import { parseOptions, usage } from "./lib/options.js";
import { installCleanup, onInterrupt, stopAll } from "./lib/procs.js";
import { printTable, writeDocs } from "./lib/report.js";
import { runClientResults } from "./scenarios/client-results.js";
import { runFanout } from "./scenarios/fanout.js";
import { runHttpTransports } from "./scenarios/http-transports.js";
import { runIdle } from "./scenarios/idle.js";
import { runInvoke } from "./scenarios/invoke.js";
import { runNotify } from "./scenarios/notify.js";
import { runProfile, type ProfileSummary } from "./scenarios/profile.js";
import { runPresence } from "./scenarios/presence.js";
import { runSqlSends } from "./scenarios/sql-sends.js";
import { runStateful } from "./scenarios/stateful.js";

/** The whole suite is bounded: past this the bench stops everything and exits non-zero. */
const HARD_LIMIT_MS = 15 * 60_000;

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (!options) {
    process.stdout.write(usage);
    return 0;
  }
  installCleanup();
  const limit = setTimeout(() => {
    process.stderr.write(`The bench ran past ${HARD_LIMIT_MS / 60_000} minutes: stopping.\n`);
    void stopAll().finally(() => process.exit(1));
  }, HARD_LIMIT_MS);
  limit.unref();
  const started = performance.now();
  const log = (line: string) => process.stdout.write(`${line}\n`);
  const prepared = await prepare(options, log);
  onInterrupt(() => prepared.cleanup());
  const bench: Bench = { options, env: prepared.env, rows: [], log };
  log(
    `Switchboard bench: ${prepared.machine.cpu}, ${prepared.machine.cores} cores, Node ${prepared.machine.node}, ` +
      `PostgreSQL ${prepared.machine.postgres}, Redis ${prepared.machine.redis}; scenarios ${options.scenarios.join(",")}` +
      `${options.quick ? " (quick)" : ""}.`,
  );
  if (prepared.machine.loadAverage > 1) {
    log(
      `Note: the load average is ${prepared.machine.loadAverage.toFixed(1)}: other work shares these cores.`,
    );
  }
  let profile: ProfileSummary | undefined;
  try {
    for (const scenario of options.scenarios) {
      if (scenario === 1) await runNotify(bench, false);
      if (scenario === 2) await runNotify(bench, true);
      if (scenario === 3) await runIdle(bench);
      if (scenario === 4) await runFanout(bench);
      if (scenario === 5) await runInvoke(bench);
      if (scenario === 6) await runStateful(bench);
      if (scenario === 7) await runClientResults(bench);
      if (scenario === 8) await runHttpTransports(bench);
      if (scenario === 9) await runSqlSends(bench);
      if (scenario === 10) await runPresence(bench);
    }
    if (options.profile) profile = await runProfile(bench);
  } finally {
    await stopAll();
    await prepared.cleanup();
  }
  const minutes = (performance.now() - started) / 60_000;
  log("");
  printTable(bench.rows, log);
  log(`\nRan in ${minutes.toFixed(1)} minutes.`);
  if (options.docsDir) {
    const written = await writeDocs(options, bench.rows, prepared.machine, profile, minutes);
    log(`Wrote ${written.join(" and ")}.`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    void stopAll().finally(() => process.exit(1));
  },
);
