// The hub module the bench loads into real node processes: `switchboard start --hubs bench/hubs.ts`.
import type { IncomingMessage } from "node:http";
import pg from "pg";
import { PostgresBackplane } from "../src/backplane/postgres/postgres-backplane.js";
import { createPublisher, type Publisher } from "../src/backplane/postgres/publisher.js";
import { Hub } from "../src/index.js";
import { Histogram, nowMicros } from "./lib/histogram.js";
import { padding, type SendPlan } from "./lib/plan.js";
import { ackPlan, startPlan } from "./peers/sender.js";
import { installStatsSignal } from "./peers/stats-signal.js";

/**
 * Measurement only, not a fast path: the backplane of this process, so the BenchStats line can carry
 * its statement counters (`stats()`). This module is imported before the node starts its backplane, so
 * wrapping `start` sees the instance; nothing on the send or receive path changes.
 */
const backplanes: PostgresBackplane[] = [];
const originalStart = PostgresBackplane.prototype.start;
PostgresBackplane.prototype.start = function (this: PostgresBackplane, handler) {
  backplanes.push(this);
  return originalStart.call(this, handler);
};
installStatsSignal(() => ({ backplane: backplanes[0]?.stats() }));

export class BenchHub extends Hub {
  /** A client that connects with `?group=g` joins g before its first message is read (scenario 4). */
  override async onConnected(): Promise<void> {
    const group = this.context.query.get("group");
    if (group) await this.groups.add(this.context.connectionId, group);
  }

  /**
   * Starts the node-side sender (see peers/sender.ts) and returns at once; the caller receives `done`
   * with the report when it has finished. Messages go to users by id, or to a group.
   */
  start(plan: SendPlan): void {
    if (plan.ask) return void this.ask(plan);
    if (plan.via) return void this.sendFromOutside(plan);
    const clients = this.clients;
    const caller = this.clients.caller;
    const pad = padding(plan.padBytes);
    const group = plan.group;
    const firstUser = plan.firstUser ?? 0;
    startPlan(
      plan,
      (seq, user, sentAt) =>
        (group === undefined ? clients.user(`u${firstUser + user!}`) : clients.group(group)).send(
          "n",
          plan.phase,
          seq,
          sentAt,
          pad,
        ),
      (report) => void caller.send("done", report),
    );
  }

  /**
   * Scenario 7: asks the users' connections (found in the registry) for client results at the plan's
   * rate, timing each from the call to its answer here on the node.
   */
  private async ask(plan: SendPlan): Promise<void> {
    const caller = this.clients.caller;
    const clients = this.clients;
    const firstUser = plan.firstUser ?? 0;
    const found = await Promise.all(
      Array.from({ length: plan.users }, (_, i) =>
        backplanes[0]!.userConnections("/hub", `u${firstUser + i}`),
      ),
    );
    const connectionIds = found.map((list) => list[0]?.connectionId ?? "missing");
    const roundTrips = new Histogram();
    startPlan(
      plan,
      (seq, user) => {
        const askedAt = nowMicros();
        return clients
          .client(connectionIds[user!]!)
          .invoke("r", seq)
          .then(() => {
            roundTrips.record(nowMicros() - askedAt);
            return { connections: 1 };
          });
      },
      (report) => void caller.send("done", { ...report, latency: roundTrips.toData() }),
    );
  }

  /**
   * Scenario 9: the same notifications, sent by this process as an application would from outside the
   * cluster: a SQL call per message on a pool of its own, or a publisher.
   */
  private sendFromOutside(plan: SendPlan): void {
    const caller = this.clients.caller;
    const pad = padding(plan.padBytes);
    const firstUser = plan.firstUser ?? 0;
    const send = plan.via === "sql" ? sqlSender(plan.database!) : publisherSender(plan.database!);
    startPlan(
      plan,
      (seq, user, sentAt) => send(`u${firstUser + user!}`, [plan.phase, seq, sentAt, pad]),
      (report) => void caller.send("done", report),
    );
  }

  /** The receivers' running total of delivered messages (closed-loop max mode). */
  ack(delivered: number): void {
    ackPlan(delivered);
  }

  /** The invocation round trip (scenario 5). */
  echo(value: unknown): unknown {
    return value;
  }
}

export const hubs = { "/hub": BenchHub };

/** The user id is the `user` query parameter (a benchmark: no authentication). */
export function userIdProvider(req: IncomingMessage): string | undefined {
  return new URL(req.url ?? "/", "http://localhost").searchParams.get("user") ?? undefined;
}

type OutsideSend = (user: string, args: unknown[]) => Promise<{ connections: number }>;
let sqlPool: pg.Pool | undefined;
let publisher: Publisher | undefined;

/** `send_to_user` per message, autocommit: each call is a transaction of its own. */
function sqlSender(database: { url: string; schema: string }): OutsideSend {
  sqlPool ??= new pg.Pool({ connectionString: database.url, max: 8, application_name: "bench sql sender" });
  const statement = `SELECT ${pg.escapeIdentifier(database.schema)}.send_to_user('/hub', $1, 'n', $2::jsonb) AS n`;
  return (user, args) =>
    sqlPool!
      .query<{ n: number }>(statement, [user, JSON.stringify(args)])
      .then((result) => ({ connections: result.rows[0]!.n }));
}

function publisherSender(database: { url: string; schema: string }): OutsideSend {
  publisher ??= createPublisher({ connectionString: database.url, schema: database.schema });
  return (user, args) =>
    publisher!.send({ kind: "users", hub: "/hub", userIds: [user] }, { target: "n", arguments: args });
}
