import { randomBytes, randomUUID } from "node:crypto";
import {
  BackplaneUnavailableError,
  ConnectionMoveError,
  UnknownConnectionError,
  type Backplane,
  type BackplaneEventHandler,
  type BackplaneMessage,
  type ClientResult,
  type ClientResultRouter,
  type ConnectionLocation,
  type ConnectionMover,
  type ConnectionCloser,
  type ConnectionInfo,
  type Drainable,
  type HealthReporter,
  type HubCount,
  type KeptNotifications,
  type MessageStore,
  type NodeDirectory,
  type NodeInfo,
  type NotificationConfirmation,
  type NotificationLister,
  type PendingNotification,
  type PendingNotificationStore,
  type PublishResult,
  type SendTarget,
} from "../backplane.js";
import { encodeClientResult, encodeDisconnect, encodeInvocation } from "../shared/envelopes.js";
import { LocalIndex, type LocalConnection } from "../shared/local-index.js";
import { settledWithin } from "../../deadline.js";
import { TargetKind, targetParts } from "../shared/targets.js";
import { activeTraceparent, sendAttributes, sendInSpan } from "../../tracing.js";
import { SWITCHBOARD_VERSION } from "../../version.js";
import { ConnectionMoves } from "./connection-moves.js";
import { GroupChanges } from "./group-changes.js";
import { InboxDispatch } from "./inbox-dispatch.js";
import { Heartbeat } from "./heartbeat.js";
import { markerOnly, Registrations } from "./registrations.js";
import { InboxReader } from "./inbox.js";
import { KeptMessages, preciseNow } from "./kept-messages.js";
import { RedisKeys } from "./keys.js";
import { createLink, text, type RedisLink } from "./link.js";
import { resolveRedisOptions, type RedisBackplaneOptions, type ResolvedRedisOptions } from "./options.js";
import * as presence from "./presence.js";
import { encodeEntry, envelopeItem, GroupChangeOutcome } from "./protocol.js";
import { createRedisLog, type RedisLog } from "./redis.log.js";
import * as registry from "./registry.js";
import { SendWriter } from "./sends.js";

/**
 * The Redis backplane: the registry and every node's inbox live in Redis, standalone or Cluster.
 *
 * - Targeted delivery: a sender looks its recipients up in the registry and writes each node that holds
 *   some of them one inbox entry (a Stream) per batch; a node reads only its own inbox. Adding nodes adds
 *   capacity: nothing is read by every node (unlike pub/sub backplanes, where every node reads everything).
 * - Exact counts: the entry is appended by a script that counts, in the same atomic step, the recipients
 *   that node has registered (registrations and removals change those sets together with a marker in the
 *   inbox, and the node delivers to a connection exactly the entries between its two markers). So what a
 *   publish counts, it delivers, and a connection never gets a send that came before it.
 * - Order: one batch at a time, and each connection's sends of a batch in one entry (two entries for a
 *   node only when a batch to users finds them moved: sends.ts), so each connection gets a sender's sends
 *   in call order.
 * - Durable: a node reads its inbox from its own cursor; a dropped connection, a failover or a Redis
 *   restart is a re-read. What Redis itself keeps through a crash depends on its persistence (AOF with
 *   `appendfsync always` keeps every acknowledged write; see docs/backplane-redis.md).
 * - Dead nodes: a node's heartbeat is a score in a sorted set, on Redis's clock. Once it is older than
 *   `nodeTimeoutMs`, sends and presence ignore the node's connections and a live node sweeps its entries.
 * - Stateful connections move between nodes (connection-moves.ts).
 *
 * Not supported: sends from SQL.
 */
export class RedisBackplane
  implements
    Backplane,
    HealthReporter,
    MessageStore,
    PendingNotificationStore,
    ClientResultRouter,
    ConnectionMover,
    NodeDirectory,
    Drainable,
    ConnectionCloser,
    NotificationLister
{
  /** This node's id: a random UUID per instance. */
  readonly nodeId = randomUUID();
  private readonly options: ResolvedRedisOptions;
  private readonly keys: RedisKeys;
  private readonly log: RedisLog;
  private readonly link: RedisLink;
  /** A connection of its own for the blocking read of the inbox. */
  private readonly readerLink: RedisLink;
  private readonly index = new LocalIndex();
  private readonly writer: SendWriter;
  private reader: InboxReader | undefined;
  private handler: BackplaneEventHandler | undefined;
  private state: "new" | "starting" | "started" | "closed" = "new";
  private closing: Promise<void> | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private startedAt = Date.now();
  private draining = false;
  private advertisedUrl: string | undefined;
  /** Registrations and removals of this node's connections, batched (registrations.ts). */
  private readonly registrations: Registrations;
  private readonly totals = { messagesIn: 0, messagesOut: 0, errors: 0 };
  private problems: { link?: string; read?: string } = {};
  private secret: Promise<Uint8Array> | undefined;
  private readonly kept: KeptMessages;
  /** What each inbox entry asks of this node (inbox-dispatch.ts). */
  private readonly dispatch: InboxDispatch;
  /** Heartbeat, dead nodes and their sweep, registering again after a sweep (heartbeat.ts). */
  private readonly heartbeat: Heartbeat;
  /** Group changes of any node's connections (group-changes.ts). */
  private readonly groups: GroupChanges;
  /** Stateful connections moving between nodes (connection-moves.ts). */
  private readonly moves: ConnectionMoves;

  /** Validates the options (throws an Error naming a bad one); connects nothing until {@link start}. */
  constructor(options: RedisBackplaneOptions) {
    this.options = resolveRedisOptions(options);
    this.keys = new RedisKeys(this.options.prefix);
    this.log = createRedisLog(this.options.logger);
    const onError = (err: Error) => {
      if (this.state === "closed") return;
      if (this.problems.link === undefined) this.log.linkError(err);
      this.problems.link = err.message;
    };
    this.link = createLink(this.options, onError, sessionName(this.nodeId));
    this.readerLink = this.link.duplicate();
    this.writer = new SendWriter(
      this.link,
      this.keys,
      this.nodeId,
      (nodeId) => this.isLive(nodeId),
      this.log,
      this.options,
      {
        written: (entries) => (this.totals.messagesOut += entries),
        failed: () => this.totals.errors++,
      },
    );
    this.registrations = new Registrations(this.nodeId, this.link, this.keys, this.index, this.options);
    this.groups = new GroupChanges(
      {
        nodeId: this.nodeId,
        ownerOf: (hub, connectionId) => this.ownerOf(hub, connectionId),
        appendTo: (nodeId, items) => this.appendTo(nodeId, items),
        run: (commands) => this.run(commands),
        failed: () => this.totals.errors++,
        moving: (hub, connectionId) => this.moves.releaseOf(hub, connectionId),
      },
      this.link,
      this.keys,
      this.index,
      this.log,
      this.options.publishTimeoutMs,
    );
    this.moves = new ConnectionMoves(
      {
        nodeId: this.nodeId,
        isLive: (nodeId) => this.isLive(nodeId),
        appendTo: (nodeId, items) => this.appendTo(nodeId, items),
        handler: () => this.handler,
        deliver: (hub, connectionId, message) => this.deliver(hub, [connectionId], message),
        counted: (connection, here) => this.counted(connection, here),
        sendsSettled: () => this.writer.settled(),
      },
      this.link,
      this.keys,
      this.index,
      this.registrations,
      this.log,
      this.options.publishTimeoutMs,
      this.options.inboxMaxEntries,
      sessionName,
    );
    this.kept = new KeptMessages(this.link, this.keys, (commands) => this.run(commands));
    this.dispatch = new InboxDispatch(
      {
        nodeId: this.nodeId,
        handler: () => this.handler,
        deliver: (hub, ids, message) => this.deliver(hub, ids, message),
        totals: this.totals,
      },
      this.index,
      this.moves,
      this.groups,
      this.registrations,
      this.log,
    );
    this.heartbeat = new Heartbeat(
      {
        nodeId: this.nodeId,
        info: () => ({
          description: this.options.description,
          startedAt: String(this.startedAt),
          version: SWITCHBOARD_VERSION,
          connections: String(this.registrations.connectionTotal()),
          ...Object.fromEntries(Object.entries(this.totals).map(([k, v]) => [k, String(v)])),
          ...(this.advertisedUrl === undefined ? {} : { url: this.advertisedUrl }),
        }),
        readerCursor: () => this.reader?.cursor,
        gone: (nodeId) => this.moves.nodeGone(nodeId),
        beaten: () => (this.problems.link = undefined),
        failed: () => this.totals.errors++,
      },
      this.link,
      this.keys,
      this.index,
      this.registrations,
      this.groups,
      this.log,
      this.options.nodeTimeoutMs,
    );
  }

  // ---- lifecycle ----

  async start(handler: BackplaneEventHandler): Promise<void> {
    if (this.state !== "new") throw new Error("start() may be called once.");
    this.state = "starting";
    this.handler = handler;
    try {
      // The client retries a refused connection for ever: a start gives up after publishTimeoutMs.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([this.link.connect(), this.readerLink.connect()]),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.options.publishTimeoutMs} ms`)),
            this.options.publishTimeoutMs,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      this.startedAt = Date.now();
      // An empty registry change: creates the inbox, and the reader starts after its marker.
      const firstId = await registry.changeConnectionSets(
        this.link,
        this.keys,
        this.nodeId,
        [],
        "start",
        this.options.inboxMaxEntries,
      );
      await this.heartbeat.beat(true);
      this.reader = new InboxReader(
        this.readerLink,
        this.keys.inbox(this.nodeId),
        firstId,
        (id, payload) => this.dispatch.onEntry(id, payload),
        (err) => this.onReadState(err),
      );
      this.reader.start();
    } catch (err) {
      this.state = "closed";
      this.link.destroy();
      this.readerLink.destroy();
      throw new BackplaneUnavailableError(
        `Could not start the Redis backplane on ${this.options.urls.join(", ")}: ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    this.every(this.options.heartbeatIntervalMs, () => void this.heartbeat.beat(false));
    this.state = "started";
    this.log.started(this.nodeId, this.options.cluster, this.options.prefix);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /** Unregisters every connection of this node; resolves once everything that counted them is delivered. */
  async drain(): Promise<void> {
    this.ensureStarted();
    this.draining = true;
    const changes = this.index
      .all()
      .map((c) => ({ hub: c.hub, connectionId: c.connectionId, add: false, userId: c.userId }));
    // A change of its own even with no connection: its marker is the point up to which we read.
    await Promise.all([
      ...changes.map((c) => this.registrations.submit(c)),
      this.registrations.submit(markerOnly()),
    ]);
  }

  clusterSecret(): Promise<Uint8Array> {
    this.secret ??= (async () => {
      const key = this.keys.secret;
      await this.link.send(key, ["SET", key, randomBytes(32).toString("hex"), "NX"]);
      return new Uint8Array(Buffer.from(text(await this.link.send(key, ["GET", key]))!, "hex"));
    })().catch((err) => {
      this.secret = undefined;
      throw unavailable(err);
    });
    return this.secret;
  }

  // ---- connections and groups ----

  async addConnection(connection: {
    connectionId: string;
    hub: string;
    userId: string;
    resumable?: boolean;
  }) {
    this.ensureStarted();
    if (this.draining)
      throw new BackplaneUnavailableError("This node is draining: it takes no new connection.");
    const { connectionId, hub, userId } = connection;
    const resumable = connection.resumable === true;
    const local = this.index.add(hub, connectionId, userId, resumable);
    let sinceSeq: number;
    try {
      sinceSeq = await this.registrations.submit({
        hub,
        connectionId,
        userId,
        add: true,
        info: { hub, connectionId, userId, resumable, connectedAt: preciseNow() },
      });
    } catch (err) {
      if (this.index.get(hub, connectionId) === local) this.index.remove(hub, connectionId);
      throw unavailable(err);
    }
    // Removed while it registered: its removal, queued behind, unregisters it again.
    if (this.index.get(hub, connectionId) !== local) return;
    this.deliverParked(local, this.index.markReady(local, sinceSeq));
  }

  async removeConnection(hub: string, connectionId: string): Promise<void> {
    const removed = this.index.remove(hub, connectionId);
    if (removed === undefined || this.state !== "started") return;
    // A stateful client coming back with this id is refused at once (on any node), not left to time out.
    if (removed.resumable) void this.moves.ended(hub, connectionId).catch(() => undefined);
    for (const group of removed.groups) this.groups.countMember(hub, group, -1);
    // A removal that fails is done again at the next heartbeat (registrations.ts); sends no longer reach
    // the connection here meanwhile (it left the index).
    await this.registrations
      .submit({ hub, connectionId, add: false, userId: removed.userId })
      .catch(() => undefined);
  }

  async addToGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureStarted();
    if ((await this.groups.change(true, hub, connectionId, group)) === GroupChangeOutcome.UnknownConnection) {
      throw new UnknownConnectionError(connectionId);
    }
  }

  async removeFromGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureStarted();
    await this.groups.change(false, hub, connectionId, group);
  }

  // ---- sending ----

  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    // Traced only inside a trace (a hub method, an API request): the span's context goes with the message.
    if (activeTraceparent() === undefined) return this.publishNow(target, message);
    return sendInSpan(sendAttributes(this.nodeId, target), (traceparent) =>
      this.publishNow(target, traceparent ? { ...message, traceparent } : message),
    );
  }

  private publishNow(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    if (this.state !== "started") {
      return Promise.reject(new BackplaneUnavailableError(`The Redis backplane is ${this.state}.`));
    }
    let local: string[];
    let envelope: Uint8Array | undefined;
    let parts;
    try {
      parts = targetParts(target);
      const movingIn: string[] = [];
      // Draining: this node's clients are being closed and counted nowhere.
      local = this.draining ? [] : this.index.resolveForSend(target.hub, parts, movingIn);
      // Connections moving in or out get it from us directly: no other node may deliver it to them too.
      const movingOut = this.moves.releasingAny
        ? local.filter((id) => this.moves.isReleasing(target.hub, id))
        : [];
      if (movingIn.length > 0 || movingOut.length > 0) {
        parts = { ...parts, excluded: [...parts.excluded, ...movingIn, ...movingOut] };
      }
      const allLocal = parts.kind === TargetKind.connections && local.length === parts.ids.length;
      // Encoded before anyone has it: a message that cannot cross nodes fails whole.
      if (!allLocal) envelope = encodeInvocation(parts, message);
    } catch (err) {
      return Promise.reject(err);
    }
    if (local.length > 0) {
      try {
        this.handler?.deliver(target.hub, local, message);
      } catch (err) {
        this.log.handlerThrew(err);
      }
    }
    if (envelope === undefined) {
      return Promise.resolve({ connections: local.length, nodes: local.length > 0 ? 1 : 0 });
    }
    return this.writer.submit({ hub: target.hub, target: parts, envelope, localConnections: local.length });
  }

  async sendClientResult(nodeId: string, result: ClientResult): Promise<void> {
    this.ensureStarted();
    if (nodeId === this.nodeId) {
      this.handler?.deliverClientResult?.(result);
      return;
    }
    const envelope = encodeClientResult(result.connectionId, result.invocationId, result.outcome);
    await this.appendTo(nodeId, [envelopeItem(result.hub, envelope)]);
  }

  async disconnect(hub: string, connectionId: string): Promise<boolean> {
    this.ensureStarted();
    if (this.index.get(hub, connectionId)) {
      this.handler?.disconnect?.(hub, connectionId);
      return true;
    }
    const owner = await this.ownerOf(hub, connectionId);
    if (owner === undefined) return false;
    return this.appendTo(owner, [envelopeItem(hub, encodeDisconnect(connectionId))]);
  }

  // ---- connections that move (connection-moves.ts) ----

  locateConnection(hub: string, connectionId: string): Promise<ConnectionLocation> {
    return this.whenStarted(() => this.moves.locate(hub, connectionId));
  }

  takeOverConnection(hub: string, connectionId: string, from: string): Promise<Uint8Array> {
    if (this.state !== "started") {
      return Promise.reject(new ConnectionMoveError(`The Redis backplane is ${this.state}.`));
    }
    if (this.draining) {
      return Promise.reject(new ConnectionMoveError("This node is stopping: it takes no connection over."));
    }
    return this.moves.takeOver(hub, connectionId, from);
  }

  // ---- messages kept for later (kept-messages.ts) ----

  storeMessage(hub: string, key: string, message: BackplaneMessage, ttlMs: number): Promise<void> {
    return this.whenStarted(() => this.kept.store(hub, key, message, ttlMs));
  }

  takeStoredMessages(hub: string, key: string): Promise<BackplaneMessage[]> {
    return this.whenStarted(() => this.kept.take(hub, key));
  }

  addPendingNotification(
    hub: string,
    key: string,
    id: string,
    message: BackplaneMessage,
    ttlMs: number,
  ): Promise<void> {
    return this.whenStarted(() => this.kept.addPending(hub, key, id, message, ttlMs));
  }

  pendingNotifications(hub: string, key: string): Promise<PendingNotification[]> {
    return this.whenStarted(() => this.kept.pending(hub, key));
  }

  confirmNotification(hub: string, id: string, connectionId: string): Promise<string | undefined> {
    return this.whenStarted(() => this.kept.confirm(hub, id, connectionId));
  }

  notificationConfirmation(hub: string, id: string): Promise<NotificationConfirmation> {
    return this.whenStarted(() => this.kept.confirmation(hub, id));
  }

  keptNotifications(hub: string, limit: number): Promise<KeptNotifications> {
    return this.whenStarted(() => this.kept.list(hub, limit));
  }

  // ---- presence ----

  userConnections(hub: string, userId: string): Promise<ConnectionInfo[]> {
    return this.whenStarted(() => presence.userConnections(this.link, this.keys, this.isLive, hub, userId));
  }

  groupMembers(hub: string, group: string): Promise<string[]> {
    return this.whenStarted(() => presence.groupMembers(this.link, this.keys, this.isLive, hub, group));
  }

  async connection(hub: string, connectionId: string) {
    const found = await this.whenStarted(() =>
      presence.connection(this.link, this.keys, this.isLive, hub, connectionId),
    );
    if (found === undefined) return undefined;
    const { resumable: _resumable, ...info } = found;
    return info;
  }

  onlineUsers(hub: string): Promise<string[]> {
    return this.whenStarted(() => presence.onlineUsers(this.link, this.keys, this.isLive, hub));
  }

  hubCounts(): Promise<HubCount[]> {
    return this.whenStarted(() => presence.hubCounts(this.link, this.keys, this.isLive));
  }

  nodes(): Promise<NodeInfo[]> {
    return this.whenStarted(() => presence.liveNodes(this.link, this.keys, this.options.nodeTimeoutMs));
  }

  async advertiseUrl(url: string): Promise<void> {
    this.ensureStarted();
    this.advertisedUrl = url;
    await this.run(() => registry.writeNodeField(this.link, this.keys, this.nodeId, "url", url));
  }

  async nodeUrl(nodeId: string): Promise<string | undefined> {
    if (!this.isLive(nodeId)) return undefined;
    return text(
      await this.whenStarted(() =>
        this.link.send(this.keys.node(nodeId), ["HGET", this.keys.node(nodeId), "url"]),
      ),
    );
  }

  health(): { status: "ok" | "degraded"; reason?: string } {
    if (this.state !== "started") {
      return { status: "degraded", reason: `The Redis backplane is ${this.state}.` };
    }
    const problem =
      this.heartbeat.problem ??
      (this.problems.read === undefined ? undefined : `Redis is unreachable (${this.problems.read})`);
    if (problem !== undefined) {
      return { status: "degraded", reason: `${problem}; sends reach this node's connections only.` };
    }
    return { status: "ok" };
  }

  /**
   * A snapshot of this node's counters (also at /metrics): inbox messages read, inbox entries written,
   * errors, send batches, the batches that needed a late wave, and the user lookups a remembered one stood in for.
   */
  stats(): RedisBackplaneStats {
    return {
      ...this.totals,
      sendBatches: this.writer.counters.batches,
      lateWaves: this.writer.counters.lateWaves,
      lookupsSaved: this.writer.lookups.saved,
    };
  }

  // ---- inside: the inbox ----

  private deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage): void {
    try {
      this.handler?.deliver(hub, connectionIds, message);
    } catch (err) {
      this.log.handlerThrew(err);
    }
  }

  private deliverParked(connection: LocalConnection, rows: { message: BackplaneMessage }[]): void {
    for (const row of rows) this.deliver(connection.hub, [connection.connectionId], row.message);
  }

  private onReadState(err: unknown): void {
    if (err === undefined) {
      this.problems.read = undefined;
      return;
    }
    this.totals.errors++;
    if (this.problems.read === undefined)
      this.log.inboxReadFailed(this.nodeId, this.reader?.cursor ?? "", err);
    this.problems.read = (err as Error)?.message ?? String(err);
  }

  /** Appends items to another node's inbox; false when that node is gone (its inbox with it). */
  async appendTo(nodeId: string, items: unknown[][]): Promise<boolean> {
    const inbox = this.keys.inbox(nodeId);
    const reply = await this.run(() =>
      this.link.send(inbox, [
        "XADD",
        inbox,
        "NOMKSTREAM",
        "MAXLEN",
        "~",
        String(this.options.inboxMaxEntries),
        "*",
        "b",
        encodeEntry(items),
      ]),
    );
    return reply !== null;
  }

  /** The live node holding a connection, per the registry. */
  async ownerOf(hub: string, connectionId: string): Promise<string | undefined> {
    const key = this.keys.connection(hub, connectionId);
    const owner = text(await this.run(() => this.link.send(key, ["HGET", key, "node"])));
    return owner !== undefined && this.isLive(owner) ? owner : undefined;
  }

  /** A connection moved here (counted here from now on) or away (no longer): the per-node counts. */
  private async counted(connection: LocalConnection, here: boolean): Promise<void> {
    const delta = here ? 1 : -1;
    await (here
      ? this.registrations.adopt(connection.hub, connection.userId)
      : this.registrations.forget(connection.hub, connection.userId));
    for (const group of connection.groups) await this.groups.countMember(connection.hub, group, delta);
  }

  /** Whether a node counts as alive (its heartbeat is within the timeout, as of our last heartbeat). */
  private readonly isLive = (nodeId: string): boolean => this.heartbeat.isLive(nodeId);

  private async shutdown(): Promise<void> {
    const wasStarted = this.state === "started";
    this.state = "closed";
    for (const timer of this.timers) clearInterval(timer);
    this.moves.stop();
    // Sends already made are written first, as on PostgreSQL, for at most one publish timeout (a Redis that
    // hangs would otherwise hold the close for a deadline per queued batch).
    await settledWithin(this.writer.settled(), this.options.publishTimeoutMs);
    await this.reader?.stop();
    if (wasStarted) {
      try {
        await this.link.send(this.keys.sweepLock(this.nodeId), ["DEL", this.keys.sweepLock(this.nodeId)]);
        await registry.sweepNode(this.link, this.keys, this.nodeId, { lockMs: 60_000 });
      } catch (err) {
        this.log.unregisterFailed(this.nodeId, err);
      }
    }
    this.index.clear();
    await Promise.all([this.link.close(), this.readerLink.close()]);
    if (wasStarted) this.log.stopped(this.nodeId);
  }

  // ---- inside: helpers ----

  private ensureStarted(): void {
    if (this.state !== "started")
      throw new BackplaneUnavailableError(`The Redis backplane is ${this.state}.`);
  }

  /** Runs Redis commands; their failure is a BackplaneUnavailableError. */
  async run<T>(commands: () => Promise<T>): Promise<T> {
    try {
      return await commands();
    } catch (err) {
      throw unavailable(err);
    }
  }

  private whenStarted<T>(commands: () => Promise<T>): Promise<T> {
    if (this.state !== "started") {
      return Promise.reject(new BackplaneUnavailableError(`The Redis backplane is ${this.state}.`));
    }
    return this.run(commands);
  }

  private every(ms: number, tick: () => void): void {
    const timer = setInterval(tick, ms);
    timer.unref();
    this.timers.push(timer);
  }
}

/** Creates a Redis backplane (standalone or Cluster); see {@link RedisBackplaneOptions}. */
export function redis(options: RedisBackplaneOptions): RedisBackplane {
  return new RedisBackplane(options);
}

export interface RedisBackplaneStats {
  /** Messages read from this node's inbox. */
  messagesIn: number;
  /** Entries this node wrote to other nodes' inboxes. */
  messagesOut: number;
  /** Failures: inbox reads, undecodable entries, send batches, group changes, heartbeats (each also logged). */
  errors: number;
  sendBatches: number;
  /** Send batches whose lookups named connections the early wave had not (a user connected elsewhere). */
  lateWaves: number;
  /** User lookups a remembered one stood in for: no user of the hub had gained a connection since it was made. */
  lookupsSaved: number;
}

/** The name of a node's connections to Redis (CLIENT SETNAME), by which others see its process alive. */
export function sessionName(nodeId: string): string {
  return `switchboard:${nodeId}`;
}

function unavailable(err: unknown): Error {
  if (err instanceof BackplaneUnavailableError || err instanceof UnknownConnectionError) return err;
  if (err instanceof TypeError) return err;
  return new BackplaneUnavailableError(`Redis: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}
