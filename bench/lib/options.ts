/** The command line of `npm run bench`. */
import { parseArgs } from "node:util";
import type { BenchOptions } from "./bench.js";
import { SERVERS, type ServerKind } from "./servers.js";

export const usage = `Usage: npm run bench -- [options]

  --quick               A subset under 2 minutes: scenarios 1, 2, 3, 6 and 7; 1,000/s and max, 1-s phases;
                        2,000 idle connections; 200 jitter and 1,000 avalanche clients; without our Redis
                        Cluster backplane unless --servers names it.
  --scenarios <list>    Which scenarios, e.g. 1,3 (default: 1,2,3,4,5,6,7,8,9,10).
                        1 cross-node notify, 2 single node, 3 idle connections, 4 fan-out, 5 invocation,
                        6 stateful reconnect and failures (stateful vs plain, jitter, avalanche; ours only),
                        7 client results (same node and cross-node; ours only), 8 Server-Sent Events and
                        long polling (direct and forwarded), 9 sends from SQL vs createPublisher (ours only),
                        10 presence queries with 10,000 connections registered (ours only).
  --servers <list>      Which servers (default: all; quick: all but ours-redis and ours-memory): ${Object.keys(SERVERS).join(", ")}.
  --duration <s>        Seconds per measured phase of scenarios 1, 2, 5, 7, 9 and 10 (default 5; quick 1).
  --rates <list>        Send rates of scenarios 1 and 2, "max" for the closed loop (default 1000,5000,max).
  --clients <n>         Receivers in scenarios 1 and 2 (default 1000).
  --idle <list>         Connection counts of scenario 3 (default 10000,19000; quick 2000).
  --fanout <n>          Group size of scenario 4 (default 10000; quick 2000).
  --profile             Also run our cross-node max phase with --cpu-prof and list the hottest functions.
  --profile-rate <n>    Profile a fixed send rate instead of the closed loop, e.g. 1000 (default: max).
  --profile-single      Profile one node (receivers and sender on it, scenario 2) instead of two.
  --profile-connect     Profile one node while --clients connect and join a group (scenario 4's set-up).
  --database-url <url>  PostgreSQL for our backplane and the Socket.IO adapter (default: $DATABASE_URL, else
                        postgres://postgres@127.0.0.1:5432/test if it answers, else an embedded PostgreSQL).
  --redis-url <url>     Redis for the Socket.IO Redis adapter (default: redis://127.0.0.1:6379).
  --no-docs             Do not write docs/benchmarks.md and docs/benchmarks.svg.
  -h, --help            This text.
`;

export function parseOptions(argv: string[]): BenchOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      scenarios: { type: "string" },
      servers: { type: "string" },
      duration: { type: "string" },
      rates: { type: "string" },
      clients: { type: "string" },
      idle: { type: "string" },
      fanout: { type: "string" },
      profile: { type: "boolean", default: false },
      "profile-rate": { type: "string" },
      "profile-single": { type: "boolean", default: false },
      "profile-connect": { type: "boolean", default: false },
      "database-url": { type: "string" },
      "redis-url": { type: "string" },
      "no-docs": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  const list = (text: string | undefined, fallback: string) =>
    (text ?? fallback).split(",").map((s) => s.trim());
  const int = (name: string, text: string, min: number, max: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new Error(`--${name}: expected a whole number from ${min} to ${max}, not '${text}'.`);
    }
    return value;
  };
  // Quick leaves out the Redis Cluster rows (a cluster started per scenario) and the memory backplane's (no
  // target compares it): with them it took 2.0 minutes on this machine.
  const notQuick = new Set(["ours-redis", "ours-memory"]);
  const everyServer = Object.keys(SERVERS).filter((id) => !quick || !notQuick.has(id));
  const servers = list(values.servers, everyServer.join(","));
  for (const id of servers) if (!(id in SERVERS)) throw new Error(`--servers: unknown server '${id}'.`);
  const duration = int("duration", values.duration ?? (quick ? "1" : "5"), 1, 60);
  return {
    quick,
    scenarios: list(values.scenarios, quick ? "1,2,3,6,7" : "1,2,3,4,5,6,7,8,9,10").map((s) =>
      int("scenarios", s, 1, 10),
    ),
    servers: servers as ServerKind["id"][],
    durationMs: duration * 1000,
    warmupMs: quick ? 500 : 1000,
    rates: list(values.rates, quick ? "1000,max" : "1000,5000,max").map((r) =>
      r === "max" ? 0 : int("rates", r, 1, 1_000_000),
    ),
    clients: int("clients", values.clients ?? "1000", 1, 18_000),
    // Each load process stays well under the 20,000-file cap; the server holds one file per connection.
    idleCounts: list(values.idle, quick ? "2000" : "10000,19000").map((n) => int("idle", n, 1, 19_500)),
    fanoutSize: int("fanout", values.fanout ?? (quick ? "2000" : "10000"), 1, 18_000),
    fanoutMessages: quick ? 3 : 5,
    echoRate: 1000,
    echoClients: 100,
    padBytes: 64,
    window: 5000,
    profile:
      values.profile ||
      values["profile-rate"] !== undefined ||
      values["profile-single"] ||
      values["profile-connect"],
    profileSingle: values["profile-single"],
    profileConnect: values["profile-connect"],
    profileRate: values["profile-rate"] ? int("profile-rate", values["profile-rate"], 1, 1_000_000) : 0,
    databaseUrl: values["database-url"] ?? process.env.DATABASE_URL,
    redisUrl: values["redis-url"] ?? "redis://127.0.0.1:6379",
    docsDir: values["no-docs"] ? "" : "docs",
  };
}
