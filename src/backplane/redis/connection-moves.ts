/**
 * Moving a connection between nodes, when a stateful client resumes on node B while node A holds its
 * connection. Each node acts in order with what it reads from its own inbox:
 *
 *   B  reads the connection's entry, adds it to its index `moving-in` (its own sends reach it there from
 *      now on, and leave it out of what they send to other nodes) and asks A (a MoveRequest in A's inbox).
 *   A  reads the request. Once its hub layer has the connection ready (nothing more dispatched), A marks it
 *      releasing (A's own sends still reach it directly, and leave it out of what goes to other nodes), lets
 *      its earlier sends finish, and moves the registry: the connection leaves A's set with a marker in A's
 *      inbox, joins B's set with a marker in B's inbox, then every lookup entry (its hash, its user's, its
 *      groups') points at B. A send counts the connection on one node at most: at A before A's marker, at B
 *      after B's; between the two, nowhere (and its count says so).
 *   A  reads its marker: every entry before it has been delivered into the connection's buffer. There and
 *      then (before the next entry) the hub layer hands the state over and A forgets the connection; A sends
 *      the state to B once the registry points there.
 *   B  reads its marker: entries after it are the connection's (delivered from the parked ones on); then the
 *      state arrives, with the memberships, and the takeover resolves with it.
 *
 * When anything fails before B has the state (A refuses, A dies, nothing comes in time), B forgets the
 * connection and erases what the registry says is at B (also when the state or a refusal arrives after B
 * gave up); the client then starts a new connection.
 *
 * A group change asked of A while its registry moves waits for the move, then goes to wherever the
 * connection is.
 */
import type { BackplaneEventHandler, BackplaneMessage, ConnectionLocation } from "../backplane.js";
import {
  encodeHandedOver,
  encodeMoveRefused,
  encodeMoveRequest,
  EnvelopeType,
  type MoveEnvelope,
} from "../shared/envelopes.js";
import { IncomingMoves, moveKey, type IncomingMove } from "../shared/incoming-moves.js";
import type { LocalConnection, LocalIndex } from "../shared/local-index.js";
import type { HandedOverGroup } from "../shared/targets.js";
import { member, type RedisKeys } from "./keys.js";
import { hash, text, texts, type RedisLink } from "./link.js";
import { envelopeItem } from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import type { Registrations } from "./registrations.js";
import * as registry from "./registry.js";

/** What moves need of the node. */
export interface MovesNode {
  readonly nodeId: string;
  isLive(nodeId: string): boolean;
  appendTo(nodeId: string, items: unknown[][]): Promise<boolean>;
  handler(): BackplaneEventHandler | undefined;
  deliver(hub: string, connectionId: string, message: BackplaneMessage): void;
  /** The connection is counted here now (moved in), or no longer (moved out): hub, user and group counts. */
  counted(connection: LocalConnection, here: boolean): Promise<void>;
  /** Resolves once every send this node made so far has been written (or failed). */
  sendsSettled(): Promise<void>;
}

interface RedisIncomingMove extends IncomingMove {
  /** Stops waiting for the moved-in marker. */
  cancelMarker?: () => void;
  /** The moved-in marker was read: the connection is counted here. */
  counted?: boolean;
}

/** How long a stateful connection that ended is remembered, so a client coming back is refused at once. */
const ENDED_KEPT_MS = 10 * 60_000;

export class ConnectionMoves {
  /** Takeovers this node waits on. */
  private readonly incoming = new IncomingMoves<RedisIncomingMove>((move) => this.forget(move));
  /** Connections this node is handing over: its own sends still reach them directly, and only that way. */
  private readonly releasing = new Set<string>();
  /** The hand-overs in progress from this node, settled when each is over (moved or not). */
  private readonly releases = new Map<string, Promise<void>>();

  constructor(
    private readonly node: MovesNode,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly index: LocalIndex,
    private readonly registrations: Registrations,
    private readonly log: RedisLog,
    private readonly timeoutMs: number,
    private readonly inboxMaxEntries: number,
    private readonly sessionName: (nodeId: string) => string,
  ) {}

  private get nodeId(): string {
    return this.node.nodeId;
  }

  /** Whether any connection is being handed over from here now. */
  get releasingAny(): boolean {
    return this.releasing.size > 0;
  }

  /** Whether this node's send must leave the connection out of what goes to other nodes. */
  isReleasing(hub: string, connectionId: string): boolean {
    return this.releasing.has(`${hub}\n${connectionId}`);
  }

  async locate(hub: string, connectionId: string): Promise<ConnectionLocation> {
    if (this.index.get(hub, connectionId)) return { kind: "here" };
    const key = this.keys.connection(hub, connectionId);
    const fields = hash(await this.link.send(key, ["HGETALL", key]));
    const nodeId = fields.get("node");
    if (nodeId !== undefined && nodeId !== this.nodeId) {
      return {
        kind: "elsewhere",
        nodeId,
        resumable: fields.get("resumable") === "1",
        nodeAlive: this.node.isLive(nodeId) && (await this.hasSession(nodeId)),
      };
    }
    const ended = this.keys.ended(hub, connectionId);
    return (await this.link.send(ended, ["EXISTS", ended])) === 1 ? { kind: "ended" } : { kind: "unknown" };
  }

  /**
   * Whether the node's process is alive: its reader's connection to the master of its inbox is there (a
   * process that died closed its connections with it). A client resumes within milliseconds of its node
   * dying, long before the heartbeat timeout says so.
   */
  private async hasSession(nodeId: string): Promise<boolean> {
    const inbox = this.keys.inbox(nodeId);
    const clients = text(await this.link.send(inbox, ["CLIENT", "LIST", "TYPE", "normal"])) ?? "";
    return clients.includes(` name=${this.sessionName(nodeId)} `);
  }

  /** A stateful connection of this node ended: a client coming back with its id is refused for a while. */
  async ended(hub: string, connectionId: string): Promise<void> {
    const key = this.keys.ended(hub, connectionId);
    await this.link.send(key, ["SET", key, "1", "PX", String(ENDED_KEPT_MS)]);
  }

  /** New node: takes a connection over from node `from`; resolves with the state its hub layer hands over. */
  takeOver(hub: string, connectionId: string, from: string): Promise<Uint8Array> {
    const key = moveKey(hub, connectionId);
    return this.incoming.start(key, { hub, connectionId, from, local: undefined }, () => {
      void this.request(key).catch((err: unknown) => this.fail(key, errorText(err)));
    });
  }

  private async request(key: string): Promise<void> {
    const move = this.incoming.get(key)!;
    const { hub, connectionId, from } = move;
    const connKey = this.keys.connection(hub, connectionId);
    const groupsKey = this.keys.connectionGroups(hub, connectionId);
    const [fields, groups] = await Promise.all([
      this.link.send(connKey, ["HGETALL", connKey]).then(hash),
      this.link.send(groupsKey, ["SMEMBERS", groupsKey]).then(texts),
    ]);
    if (this.incoming.get(key) !== move) return;
    if (fields.get("node") !== from) throw new Error("the connection is no longer on that node");
    if (fields.get("resumable") !== "1")
      throw new Error("the connection did not agree to stateful reconnect");
    move.local = this.index.add(hub, connectionId, fields.get("user") ?? "", true, "moving-in");
    this.index.applyHandedOverGroups(
      hub,
      connectionId,
      groups.map((group) => ({ group, seq: 0, member: true })),
    );
    this.incoming.failAfter(key, this.timeoutMs, `${from} did not answer within ${this.timeoutMs} ms`);
    // The marker A writes into our inbox when the registry points here: entries after it are the connection's.
    // Handled as it is read (synchronously), so no later entry meets the connection still parked.
    const marker = this.registrations.markerRead(movedInToken(hub, connectionId), 6 * this.timeoutMs, (seq) =>
      this.moveInForce(key, seq),
    );
    move.cancelMarker = marker.cancel; // the takeover's own timer decides when to give up
    const asked = await this.node.appendTo(from, [
      envelopeItem(hub, encodeMoveRequest(connectionId, this.nodeId)),
    ]);
    if (!asked) throw new Error("that node is gone");
  }

  /** An envelope of a move, read in inbox order. */
  onEnvelope(hub: string, envelope: MoveEnvelope): void {
    const key = moveKey(hub, envelope.connectionId);
    switch (envelope.type) {
      case EnvelopeType.MoveRequest:
        void this.release(hub, envelope.connectionId, envelope.toNode);
        return;
      case EnvelopeType.HandedOver:
        return this.arrived(key, envelope.state, envelope.groups);
      case EnvelopeType.MoveRefused:
        return this.fail(key, envelope.reason);
      default:
        return;
    }
  }

  /**
   * While a connection's registry is being moved from here (after its hub layer got ready: a group change
   * its own invocation makes before that is applied here, and moves with it): settles once that is over.
   */
  releaseOf(hub: string, connectionId: string): Promise<void> | undefined {
    return this.releases.get(`${hub}\n${connectionId}`);
  }

  /** Old node: another node asks for a connection; once ready, the registry moves it there. */
  private async release(hub: string, connectionId: string, toNode: string): Promise<void> {
    const key = `${hub}\n${connectionId}`;
    let over = () => {};
    const settled = new Promise<void>((resolve) => (over = resolve));
    try {
      await this.releaseNow(hub, connectionId, toNode, () => this.releases.set(key, settled));
    } finally {
      if (this.releases.get(key) === settled) this.releases.delete(key);
      over();
    }
  }

  private async releaseNow(
    hub: string,
    connectionId: string,
    toNode: string,
    movingFromHere: () => void,
  ): Promise<void> {
    const handler = this.node.handler();
    const local = this.index.get(hub, connectionId);
    const key = `${hub}\n${connectionId}`;
    if (!local || local.state !== "ready" || this.releasing.has(key)) {
      return this.refuse(hub, connectionId, toNode, "the connection is not (or no longer) on this node");
    }
    const ready =
      (await handler?.prepareHandOver?.(hub, connectionId).catch(() => false)) === true &&
      this.index.get(hub, connectionId) === local;
    if (!ready) {
      handler?.cancelHandOver?.(hub, connectionId);
      return this.refuse(hub, connectionId, toNode, "the connection could not get ready to move");
    }
    this.releasing.add(key);
    movingFromHere();
    // Sends this node made before: their remote parts must not look the connection up after the move.
    await this.node.sendsSettled();
    // At our marker (read in order with every entry before it) the state is taken, synchronously: no entry
    // after the marker may reach the connection here. It goes to the new node once the registry points there.
    let state: { value: Uint8Array | undefined; groups: HandedOverGroup[] } | undefined;
    const marker = this.registrations.markerRead(movedOutToken(hub, connectionId), 6 * this.timeoutMs, () => {
      state = this.takeState(local);
    });
    try {
      await this.moveRegistry(local, toNode);
      await marker.seen;
    } catch (err) {
      marker.cancel();
      this.releasing.delete(key);
      if (state === undefined) handler?.cancelHandOver?.(hub, connectionId);
      return this.refuse(hub, connectionId, toNode, `the move could not be written: ${errorText(err)}`);
    }
    const taken = state as { value: Uint8Array | undefined; groups: HandedOverGroup[] } | undefined;
    if (taken?.value === undefined) {
      return this.refuse(hub, connectionId, toNode, "the connection could not be handed over");
    }
    this.node
      .appendTo(toNode, [envelopeItem(hub, encodeHandedOver(connectionId, taken.value, taken.groups))])
      .catch((err: unknown) => this.log.moveFailed(connectionId, toNode, err));
  }

  /** Old node, at its marker: every earlier entry is delivered; the hub layer hands the state over. */
  private takeState(local: LocalConnection): { value: Uint8Array | undefined; groups: HandedOverGroup[] } {
    const { hub, connectionId } = local;
    this.releasing.delete(`${hub}\n${connectionId}`);
    if (this.index.get(hub, connectionId) !== local) return { value: undefined, groups: [] };
    const value = this.node.handler()?.handOver?.(hub, connectionId);
    const groups = this.index.groupsOf(local);
    this.index.remove(hub, connectionId);
    void this.node.counted(local, false).catch(() => undefined);
    return { value, groups };
  }

  /**
   * The connection leaves our set (with our marker), joins `toNode`'s (with its marker), then every lookup
   * points there. Never in both sets at once: a send to all counts it once at most. A send in between
   * counts it nowhere (and says so in its count).
   */
  private async moveRegistry(local: LocalConnection, toNode: string): Promise<void> {
    const { hub, connectionId, userId } = local;
    const max = this.inboxMaxEntries;
    await registry.changeConnectionSets(
      this.link,
      this.keys,
      this.nodeId,
      [{ hub, connectionId, add: false }],
      movedOutToken(hub, connectionId),
      max,
    );
    await registry.changeConnectionSets(
      this.link,
      this.keys,
      toNode,
      [{ hub, connectionId, add: true }],
      movedInToken(hub, connectionId),
      max,
    );
    const from = member(this.nodeId, connectionId);
    const to = member(toNode, connectionId);
    const connKey = this.keys.connection(hub, connectionId);
    const writes: Promise<unknown>[] = [this.link.send(connKey, ["HSET", connKey, "node", toNode])];
    if (userId !== "") {
      const userKey = this.keys.user(hub, userId);
      // The user's connections are ordered by when each connected: a move keeps that time.
      const move = async () => {
        const at = text(await this.link.send(userKey, ["ZSCORE", userKey, from])) ?? String(Date.now());
        await this.link.send(userKey, ["ZREM", userKey, from]);
        await this.link.send(userKey, ["ZADD", userKey, at, to]);
      };
      writes.push(move());
    }
    for (const group of local.groups) {
      const groupKey = this.keys.group(hub, group);
      writes.push(
        this.link
          .send(groupKey, ["SREM", groupKey, from])
          .then(() => this.link.send(groupKey, ["SADD", groupKey, to])),
      );
    }
    await Promise.all(writes);
    // The user's entry names the new node now: lookups other nodes remember are out of date (batch-lookups.ts).
    if (userId !== "") await registry.markUsersChanged(this.link, this.keys, [hub]);
  }

  /** New node: entries after the marker are the connection's; those read meanwhile follow. */
  private moveInForce(key: string, seq: number): void {
    const move = this.incoming.get(key);
    if (!move?.local) return;
    this.incoming.failAfter(key, 6 * this.timeoutMs, `${move.from} did not hand the connection over`);
    // Counted here from the marker on (a send to all finds this node in the hub's list).
    move.counted = true;
    void this.node.counted(move.local, true).catch(() => undefined);
    for (const row of this.index.markReady(move.local, seq))
      this.node.deliver(move.hub, move.connectionId, row.message);
  }

  /** New node: the state arrived. */
  private arrived(
    key: string,
    state: Uint8Array,
    groups: { group: string; seq: number; member: boolean }[],
  ): void {
    const move = this.incoming.get(key);
    if (!move?.local) return this.orphaned(key);
    this.index.applyHandedOverGroups(move.hub, move.connectionId, groups);
    this.incoming.settle(key, state);
  }

  private refuse(hub: string, connectionId: string, toNode: string, reason: string): void {
    this.node
      .appendTo(toNode, [envelopeItem(hub, encodeMoveRefused(connectionId, reason))])
      .catch((err: unknown) => this.log.moveFailed(connectionId, toNode, err));
  }

  /** New node: the takeover failed (or was given up already: see orphaned). */
  private fail(key: string, reason: string): void {
    if (!this.incoming.fail(key, reason)) this.orphaned(key);
  }

  /** New node: the takeover failed: the connection is forgotten here, and erased if the registry moved it. */
  private forget(move: RedisIncomingMove): void {
    move.cancelMarker?.();
    const { hub, connectionId } = move;
    if (move.local && this.index.get(hub, connectionId) === move.local) this.index.remove(hub, connectionId);
    if (move.local && move.counted) void this.node.counted(move.local, false).catch(() => undefined);
    void this.eraseIfHere(hub, connectionId).catch((err: unknown) =>
      this.log.moveFailed(connectionId, this.nodeId, err),
    );
  }

  /**
   * New node: the old node handed over (or refused) a connection this node no longer waits for (it gave up
   * first). The registry may point here by now: erased, so nothing counts a connection nobody holds.
   */
  private orphaned(key: string): void {
    const at = key.indexOf("\n");
    const [hub, connectionId] = [key.slice(0, at), key.slice(at + 1)];
    if (this.index.get(hub, connectionId)) return;
    void this.eraseIfHere(hub, connectionId).catch((err: unknown) =>
      this.log.moveFailed(connectionId, this.nodeId, err),
    );
  }

  private async eraseIfHere(hub: string, connectionId: string): Promise<void> {
    const connKey = this.keys.connection(hub, connectionId);
    const fields = hash(await this.link.send(connKey, ["HGETALL", connKey]));
    if (fields.get("node") !== this.nodeId) return;
    const userId = fields.get("user") ?? "";
    await registry.changeConnectionSets(
      this.link,
      this.keys,
      this.nodeId,
      [{ hub, connectionId, add: false }],
      "",
      this.inboxMaxEntries,
    );
    await registry.eraseConnection(this.link, this.keys, this.nodeId, hub, connectionId, userId);
  }

  /** Fails every takeover in progress (the backplane is closing). */
  stop(): void {
    this.incoming.stop();
  }

  /** A node was swept: takeovers from it fail at once. */
  nodeGone(nodeId: string): void {
    this.incoming.nodeGone(nodeId);
  }
}

function movedInToken(hub: string, connectionId: string): string {
  return `moved-in\n${hub}\n${connectionId}`;
}

function movedOutToken(hub: string, connectionId: string): string {
  return `moved-out\n${hub}\n${connectionId}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
