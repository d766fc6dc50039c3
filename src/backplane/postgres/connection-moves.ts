/**
 * Moving a connection between nodes, when a stateful client resumes on another node than the one holding
 * its connection (node B takes over from node A). Every step is a row of the log, so each node acts on it
 * in order with the messages it delivers:
 *
 *   B  reads the connection's row and memberships, adds it to its index `moving-in` (its own sends reach
 *      it there from now on, and name it as excluded, so A does not deliver them too; rows read for it are
 *      parked) and writes a MoveRequest to A. One takeover per connection at a time.
 *   A  reads the request. Once its hub layer has the connection ready (nothing more dispatched, running
 *      invocations finished), the connection becomes `leaving` (A's sends go through the log from now on)
 *      and A queues the move behind its own earlier writes: holding the log's counter row, one statement
 *      points the registry row and the memberships at B and writes the Moved marker to both nodes. Writes
 *      that resolved their recipients before the move abort and are retried (log.ts, "Moves"), so no row
 *      after the marker names A for it.
 *   A  reads the marker: every row before it has been delivered into the connection's buffer. The hub layer
 *      hands over the connection's state; A forgets it and writes HandedOver (state and memberships) to B.
 *   B  reads the marker: rows after it are the connection's, delivered from the parked ones on; then reads
 *      HandedOver, applies the exact memberships and resolves the takeover with the state. The hub layer
 *      installs it, then the messages that waited.
 *
 * When anything fails before B has the state (A refuses, A dies, nothing comes in time), B forgets the
 * connection and deletes whatever registration it has here (with a tombstone); the client then starts a new
 * connection. A connection whose node died loses its onDisconnected, as every connection of a dead node does.
 */
import type { BackplaneEventHandler } from "../backplane.js";
import { IncomingMoves, moveKey, type IncomingMove } from "../shared/incoming-moves.js";
import type { LocalIndex } from "../shared/local-index.js";
import type { LogWriter } from "./log-writer.js";

import type { SchemaNames } from "./names.js";
import {
  EnvelopeType,
  encodeHandedOver,
  encodeMoveRefused,
  encodeMoveRequest,
  encodeMoved,
  type MoveEnvelope,
} from "./protocol.js";
import type { Log } from "./postgres.log.js";
import * as liveness from "./node-liveness.js";
import * as registry from "./registry.js";
import type { Sql } from "./sql.js";

interface PostgresIncomingMove extends IncomingMove {
  /** Checks that the old node still lives while this node waits for it. */
  watch: NodeJS.Timeout | undefined;
}

export class ConnectionMoves {
  /** Takeovers this node is waiting on. */
  private readonly incoming = new IncomingMoves<PostgresIncomingMove>((move) => this.forget(move));

  constructor(
    private readonly nodeId: string,
    private readonly sql: Sql,
    private readonly names: SchemaNames,
    private readonly index: LocalIndex,
    private readonly writer: LogWriter,
    private readonly handler: () => BackplaneEventHandler | undefined,
    private readonly log: Log,
    private readonly timeoutMs: number,
    /** How often the old node's liveness is checked while waiting, and how long it may look dead. */
    private readonly liveness: { intervalMs: number; graceMs: number },
    /** Resolves once the group change statement in flight is applied here (GroupChanges.settled). */
    private readonly groupChangesSettled: () => Promise<void>,
  ) {}

  /**
   * Takes a connection over from node `from`; resolves with the state that node's hub layer handed over.
   * One takeover per connection at a time: its key is taken before anything is awaited.
   */
  takeOver(hub: string, connectionId: string, from: string): Promise<Uint8Array> {
    const key = moveKey(hub, connectionId);
    const move = { hub, connectionId, from, local: undefined, watch: undefined };
    return this.incoming.start(key, move, () => {
      void this.request(key).catch((err: unknown) => this.incoming.fail(key, errorText(err)));
    });
  }

  /**
   * The connection joins this node's index, moving in, with the memberships the registry knows (so group
   * sends reach it here before the old node's exact list arrives), and the old node is asked for it.
   */
  private async request(key: string): Promise<void> {
    const move = this.incoming.get(key)!;
    const { hub, connectionId, from } = move;
    const row = await registry.readConnection(this.sql.query, this.names, hub, connectionId);
    if (this.incoming.get(key) !== move) return;
    if (!row || row.nodeId !== from) throw new Error("the connection is no longer on that node");
    if (!row.resumable) throw new Error("the connection did not agree to stateful reconnect");
    move.local = this.index.add(hub, connectionId, row.userId, true, "moving-in");
    this.index.applyHandedOverGroups(
      hub,
      connectionId,
      row.groups.map((group) => ({ group, seq: 0, member: true })),
    );
    this.incoming.failAfter(key, this.timeoutMs, `${from} did not answer within ${this.timeoutMs} ms`);
    move.watch = this.watchOldNode(key, from);
    await this.writer.appendControl(hub, [from], encodeMoveRequest(connectionId, this.nodeId));
  }

  /**
   * A client often resumes within milliseconds of its old node dying, before anyone has swept it: the
   * takeover then gives up as soon as that node's liveness lock has been free for the grace period,
   * rather than at the timeout.
   */
  private watchOldNode(key: string, from: string): NodeJS.Timeout {
    let deadSince: number | undefined;
    let checking = false;
    const watch = setInterval(() => {
      if (checking) return;
      checking = true;
      liveness
        .nodeLives(this.sql.query, this.names, from)
        .then((lives) => {
          if (lives) deadSince = undefined;
          else if (deadSince === undefined) deadSince = Date.now();
          if (deadSince !== undefined && Date.now() - deadSince >= this.liveness.graceMs) {
            this.incoming.fail(key, "that node is gone");
          }
        })
        .catch(() => undefined) // the timeout still bounds the wait
        .finally(() => (checking = false));
    }, this.liveness.intervalMs);
    watch.unref();
    return watch;
  }

  /** A node was swept: takeovers from it fail at once. */
  nodeGone(nodeId: string): void {
    this.incoming.nodeGone(nodeId);
  }

  /** Fails every takeover in progress (the backplane is closing). */
  stop(): void {
    this.incoming.stop();
  }

  /** A control row, read in log order. */
  onControl(seq: number, hub: string, envelope: MoveEnvelope): void {
    const key = moveKey(hub, envelope.connectionId);
    switch (envelope.type) {
      case EnvelopeType.MoveRequest:
        void this.release(hub, envelope.connectionId, envelope.toNode);
        return;
      case EnvelopeType.Moved:
        if (envelope.fromNode === this.nodeId)
          return this.handOver(hub, envelope.connectionId, envelope.toNode);
        if (envelope.toNode === this.nodeId) return this.moveInForce(key, seq);
        return;
      case EnvelopeType.HandedOver:
        return this.arrived(key, envelope.state, envelope.groups);
      case EnvelopeType.MoveRefused:
        this.incoming.fail(key, envelope.reason);
        return;
    }
  }

  /**
   * Old node: another node asks for a connection. Once the hub layer has it ready (running invocations
   * finished), it leaves, behind everything this node wrote before: from the same moment on, this node's
   * own sends to it go through the log, after the move.
   */
  private async release(hub: string, connectionId: string, toNode: string): Promise<void> {
    const handler = this.handler();
    const local = this.index.get(hub, connectionId);
    if (!local || local.state !== "ready") {
      // Not here, or already moving (a second request for it): the first move, if any, goes on.
      return this.refuse(hub, connectionId, toNode, "the connection is not (or no longer) on this node");
    }
    const ready =
      (await handler?.prepareHandOver?.(hub, connectionId).catch(() => false)) === true &&
      this.index.get(hub, connectionId) === local &&
      local.state === "ready";
    if (!ready) {
      handler?.cancelHandOver?.(hub, connectionId);
      return this.refuse(hub, connectionId, toNode, "the connection could not get ready to move");
    }
    local.state = "leaving";
    // A change to it made without a log row must be in the memberships handed over: the statement in
    // flight may have made one; later ones see it leaving and write a row, read before the marker.
    await this.groupChangesSettled();
    const stay = (reason: string): void => {
      if (local.state === "leaving") local.state = "ready";
      handler?.cancelHandOver?.(hub, connectionId);
      this.refuse(hub, connectionId, toNode, reason);
    };
    const marker = encodeMoved(connectionId, this.nodeId, toNode);
    try {
      const seq = await this.writer.runInOrder((sql) =>
        registry.moveConnection(sql, this.names, hub, connectionId, this.nodeId, toNode, marker),
      );
      if (seq === undefined) stay("the connection ended before it could move");
    } catch (err) {
      stay(`the move could not be written: ${String(err)}`);
    }
  }

  /** Old node: the move is in force and every earlier row was delivered. Hand the state over. */
  private handOver(hub: string, connectionId: string, toNode: string): void {
    const local = this.index.get(hub, connectionId);
    if (!local || local.state !== "leaving") {
      // It ended here while the move was written: the new node must not wait for it.
      return this.refuse(hub, connectionId, toNode, "the connection ended before it could be handed over");
    }
    const state = this.handler()?.handOver?.(hub, connectionId);
    const groups = this.index.groupsOf(local);
    this.index.remove(hub, connectionId);
    if (state === undefined) {
      return this.refuse(hub, connectionId, toNode, "the connection could not be handed over");
    }
    this.sql.stats.movesOut++;
    this.writer
      .appendControl(hub, [toNode], encodeHandedOver(connectionId, state, groups))
      .catch((err: unknown) => this.log.moveFailed(connectionId, toNode, err));
  }

  /** New node: rows after the marker are the connection's; those read meanwhile follow the state. */
  private moveInForce(key: string, seq: number): void {
    const move = this.incoming.get(key);
    if (!move?.local) return;
    // The move is in force: the state follows as soon as the old node has read the marker. Only its
    // death (the watch) or a much longer silence gives up now.
    this.incoming.failAfter(key, 6 * this.timeoutMs, `${move.from} did not hand the connection over`);
    const parked = this.index.markReady(move.local, seq);
    const handler = this.handler();
    for (const row of parked) handler?.deliver(move.hub, [move.connectionId], row.message);
  }

  /** New node: the state arrived. */
  private arrived(
    key: string,
    state: Uint8Array,
    groups: { group: string; seq: number; member: boolean }[],
  ): void {
    const move = this.incoming.get(key);
    if (!move?.local) return;
    clearInterval(move.watch);
    this.index.applyHandedOverGroups(move.hub, move.connectionId, groups);
    this.sql.stats.movesIn++;
    this.incoming.settle(key, state);
  }

  private refuse(hub: string, connectionId: string, toNode: string, reason: string): void {
    this.writer
      .appendControl(hub, [toNode], encodeMoveRefused(connectionId, reason))
      .catch((err: unknown) => this.log.moveFailed(connectionId, toNode, err));
  }

  /** New node: the takeover failed. The connection is forgotten here, and unregistered if it had moved. */
  private forget(move: PostgresIncomingMove): void {
    clearInterval(move.watch);
    if (move.local && this.index.get(move.hub, move.connectionId) === move.local) {
      this.index.remove(move.hub, move.connectionId);
    }
    // The move may have come into force without this node having read its marker yet: whatever the
    // registry says is here goes (with a tombstone), so nothing is counted for a connection nobody holds.
    const gone = [{ hub: move.hub, connectionId: move.connectionId }];
    registry
      .deleteConnections(this.sql.query, this.names, this.nodeId, gone)
      .catch((err: unknown) => this.log.moveFailed(move.connectionId, this.nodeId, err));
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
