// The hub module the bench loads into real node processes: `switchboard start --hubs bench/hubs.ts`.
import type { IncomingMessage } from "node:http";
import { PostgresBackplane } from "../src/backplane/postgres/postgres-backplane.js";
import { Hub } from "../src/index.js";
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
