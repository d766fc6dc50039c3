/**
 * What every bench server understands, whatever its protocol: a send plan started by a control client,
 * the receivers' acknowledgements, and the report at the end. Servers (ours and the peers) and the load
 * processes import this file, so the payload and the pacing are the same for all of them.
 *
 * Every notification is the client method `n` with the arguments `[phase, seq, sentAtMicros, pad]`:
 * `sentAtMicros` is read from CLOCK_MONOTONIC on the sender (see histogram.ts `nowMicros`), so a receiver
 * in another process on this machine subtracts it from its own reading of the same clock.
 */

import type { HistogramData } from "./histogram.js";

export interface SendPlan {
  /** Tags the notifications, so a straggler of an earlier phase is never counted in this one. */
  phase: number;
  /** Messages per second; 0 sends as fast as the window of unacknowledged messages allows. */
  rate: number;
  /** How long the sender sends. */
  durationMs: number;
  /**
   * At most this many messages sent but not yet acknowledged by the receivers (only with `rate: 0`): the
   * closed loop that measures the highest throughput without losing or piling up messages.
   */
  window: number;
  /**
   * Message `seq` goes to user `u${firstUser + seq % users}` (firstUser 0 unless set, and only ours reads
   * it); with `group` set, every message goes to the group.
   */
  users: number;
  firstUser?: number;
  group?: string;
  /** Length of the padding string in each message, the same for every server. */
  padBytes: number;
  /** Report the seq of every send confirmed with a connection (the jitter and avalanche scenarios). */
  track?: boolean;
  /**
   * Ours only (scenario 7): instead of notifying, ask each user's connection for a client result (method
   * `r`, which the light client answers with its first argument); the report carries the round trips,
   * timed on the node from the call to its answer.
   */
  ask?: boolean;
  /**
   * Ours only (scenario 9): send from outside the node's backplane, through a connection of the sender's
   * own to `database`: `sql` calls `send_to_user` (one transaction per message), `publisher` goes through
   * `createPublisher` (batched). Each resolves with the connections the send addressed.
   */
  via?: "sql" | "publisher";
  database?: { url: string; schema: string };
}

/** What the sender reports when it has finished (sent to the control client as method `done`). */
export interface SendReport {
  phase: number;
  /** Send calls made. */
  sent: number;
  /** Send calls that failed (a rejected publish): messages that cannot arrive. */
  failed: number;
  /** From the first send to the last. */
  elapsedMs: number;
  /** The first failure's text, if any. */
  error?: string;
  /** Sends that resolved with no connection to reach (`connections: 0`), where the server tells. */
  zero?: number;
  /** With `track`: the seqs of the sends confirmed with at least one connection. */
  confirmed?: number[];
  /** With `track`: when the first message was due, on CLOCK_MONOTONIC in µs (message s was due s / rate later). */
  startedAtMicros?: number;
  /** With `ask`: the client results' round trips. */
  latency?: HistogramData;
}

/** The padding of a plan: the same bytes for every server and every message. */
export function padding(bytes: number): string {
  return "x".repeat(Math.max(0, bytes));
}
