import { randomUUID } from "node:crypto";
import pg from "pg";
import {
  type HubCatalog,
  type ConnectionCloser,
  type KeptNotifications,
  type NotificationLister,
  type HubDeclaration,
  type HubCount,
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
  type HealthReporter,
  type MessageStore,
  type ConnectionInfo,
  type Drainable,
  type NodeDirectory,
  type NodeInfo,
  type NotificationConfirmation,
  type PendingNotification,
  type PendingNotificationStore,
  type PublishResult,
  type SendTarget,
} from "../backplane.js";
import { ConnectionMoves } from "./connection-moves.js";
import { Batcher } from "../shared/batcher.js";
import { LocalIndex, type LocalConnection, type ParkedRow } from "../shared/local-index.js";
import {
  encodeClientResult,
  encodeDisconnect,
  encodeDrained,
  encodeInvocation,
  EnvelopeType,
  targetParts,
  type ControlEnvelope,
  type DecodedTarget,
} from "./protocol.js";
import { NodeUrls } from "./node-urls.js";
import { declareHubs, OutboxRelay } from "./sql-publishing.js";
import { activeTraceparent, sendInSpan, sendAttributes } from "../../tracing.js";
import * as presence from "./presence.js";
import * as pending from "./pending-notifications.js";
import * as stored from "./stored-messages.js";
import { readHead } from "./log.js";
import { LogReader } from "./log-reader.js";
import { LogWriter } from "./log-writer.js";
import { Maintenance } from "./maintenance.js";
import { NodeArrivals } from "./node-arrivals.js";
import { migrateWith } from "./migrations.js";
import { heartbeatApplicationName, poolApplicationName, SchemaNames } from "./names.js";
import { resolveOptions, type PostgresBackplaneOptions, type ResolvedOptions } from "./options.js";
import { createLog, type Log } from "./postgres.log.js";
import * as registry from "./registry.js";
import * as directory from "./node-urls.js";
import * as liveness from "./node-liveness.js";
import { createPool, emptyStats, Sql, type PostgresBackplaneStats } from "./sql.js";
import { WakeupListener } from "./wakeup.js";
import { GroupChanges } from "./group-changes.js";

/** Most connections registered (or removed) by one statement. */
const REGISTRY_BATCH = 500;

/**
 * The SQL backplane: every node of the cluster shares one PostgreSQL schema holding the registry (nodes,
 * connections, groups) and the message log. See protocol.ts for the log's layout and cursor scheme.
 *
 * Guarantees, beyond those of {@link Backplane}:
 * - A message reaches each live recipient at most once, and the messages of one node reach each recipient
 *   in publish order (the log is read in seq order and one node's batches commit in call order).
 * - Nothing committed is lost to a dropped LISTEN connection or a restart of the database: readers follow
 *   their cursor, and wake-ups are only hints. A node further behind than the retention loses the rows
 *   trimmed meanwhile.
 * - A node whose process died is swept, with its connections and memberships, within about a second: its
 *   LISTEN session holds a liveness lock that ends with it. A node that hangs without dying is swept once
 *   silent for `nodeTimeoutMs`, and only by nodes that were themselves alive for that long, so a database
 *   outage never makes healthy nodes sweep each other. A node that was swept while paused registers again
 *   with its connections at its first heartbeat after the pause.
 * - What a publish counts, it delivers: this node counts its own recipients as it delivers to them, the
 *   registry the other nodes'.
 * - Stateful connections move between nodes with nothing lost or repeated (connection-moves.ts).
 *
 * What it cannot do: deliver to a connection of a node that is down (there is no store-and-forward), or
 * run through a pooler in transaction mode (LISTEN and the liveness lock need a session).
 */
export class PostgresBackplane
  implements
    Backplane,
    HealthReporter,
    MessageStore,
    PendingNotificationStore,
    ConnectionMover,
    ClientResultRouter,
    NodeDirectory,
    Drainable,
    HubCatalog,
    ConnectionCloser,
    NotificationLister
{
  /** This node's id: a random UUID per instance. */
  readonly nodeId = randomUUID();
  private readonly options: ResolvedOptions;
  private readonly names: SchemaNames;
  private readonly log: Log;
  private readonly counters = emptyStats();
  private readonly index = new LocalIndex();
  private readonly pool: pg.Pool;
  private readonly sql: Sql;
  /** A connection of its own for the heartbeat, so a burst of registry writes cannot delay it past the timeout. */
  private readonly heartbeatPool: pg.Pool;
  private readonly writer: LogWriter;
  private reader: LogReader | undefined;
  private listener: WakeupListener | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private state: "new" | "starting" | "started" | "closed" = "new";
  private handler: BackplaneEventHandler | undefined;
  private closing: Promise<void> | undefined;
  private secret: Promise<Uint8Array> | undefined;
  private registered = false;
  private readonly maintenance: Maintenance;
  private readonly moves: ConnectionMoves;
  /**
   * Set by drain(): the node takes no connection, and its own sends count no local connection (the
   * node's clients are being closed: the registry no longer counts them either).
   */
  private draining = false;
  /** Registrations in flight (drain() waits for them). */
  private readonly registering = new Set<Promise<unknown>>();
  /** drain() calls waiting for their marker, by its seq. */
  private readonly drainWaiters = new Map<number, () => void>();
  /** The URL this node advertised (see advertiseUrl). */
  private advertisedUrl: string | undefined;
  /** The nodes' URLs as last read (see nodeUrl). */
  private readonly nodeUrls = new NodeUrls(() =>
    this.registryQuery((q) => directory.nodeUrls(q, this.names, this.options.nodeTimeoutMs)),
  );
  /** This node's liveness lock, held by its LISTEN session. */
  private readonly livenessLock: liveness.LivenessLock;
  /** Whether another node may hold a connection; alone, sends skip the database (node-arrivals.ts). */
  private readonly arrivals = new NodeArrivals();
  /** Moves sends from SQL left in the outbox to the log (sql-publishing.ts). */
  private readonly outbox: OutboxRelay;
  /** Connections registered, and removed, together while a statement is in flight: one commit per burst. */
  private readonly registrations: Batcher<registry.NewConnection, registry.Registered>;
  private readonly removals: Batcher<{ hub: string; connectionId: string }, void>;
  /** Group changes of any node's connections, batched, in force when they resolve (group-changes.ts). */
  private readonly groupChanges: GroupChanges;

  /** Validates the options (throws an Error naming a bad one); connects nothing until {@link start}. */
  constructor(options: PostgresBackplaneOptions) {
    this.options = resolveOptions(options);
    this.names = new SchemaNames(this.options.schema);
    this.log = createLog(this.options.logger);
    // Alone again only from the next heartbeat after a session takes the lock: an arrival may be in the
    // log, not yet read.
    this.livenessLock = new liveness.LivenessLock(this.names, this.nodeId, this.log, () =>
      this.arrivals.notAlone(),
    );
    this.pool = createPool({
      connectionString: this.options.connectionString,
      poolSize: this.options.poolSize,
      statementTimeoutMs: this.options.publishTimeoutMs,
      applicationName: poolApplicationName(this.nodeId),
      onError: (err) => this.log.poolError(err),
    });
    this.sql = new Sql(this.pool, this.counters);
    this.heartbeatPool = createPool({
      connectionString: this.options.connectionString,
      poolSize: 1,
      statementTimeoutMs: this.options.publishTimeoutMs,
      applicationName: heartbeatApplicationName(this.nodeId),
      onError: (err) => this.log.poolError(err),
    });
    this.maintenance = new Maintenance(
      this.sql,
      new Sql(this.heartbeatPool, this.counters),
      this.names,
      this.nodeId,
      this.options,
      this.index,
      this.log,
      () => this.livenessLock.heldSince,
      (swept) => swept.forEach((id) => this.moves.nodeGone(id)),
      () => this.advertisedUrl,
      this.arrivals,
      () => this.announceArrival(),
    );
    this.writer = new LogWriter(this.sql, this.names, this.options, this.log, this.nodeId);
    this.moves = new ConnectionMoves(
      this.nodeId,
      this.sql,
      this.names,
      this.index,
      this.writer,
      () => this.handler,
      this.log,
      this.options.moveTimeoutMs,
      { intervalMs: this.options.livenessProbeIntervalMs, graceMs: this.options.deadSessionGraceMs },
      () => this.groupChanges.settled(),
    );
    const query = this.sql.query;
    const connectionKey = (c: { hub: string; connectionId: string }) => `${c.hub}\n${c.connectionId}`;
    this.registrations = new Batcher<registry.NewConnection, registry.Registered>(
      (connections) => registry.insertConnections(query, this.names, this.nodeId, connections),
      connectionKey,
      REGISTRY_BATCH,
      "turn",
    );
    this.removals = new Batcher<{ hub: string; connectionId: string }, void>(
      async (connections) => {
        await registry.deleteConnections(query, this.names, this.nodeId, connections);
        return connections.map(() => undefined);
      },
      connectionKey,
      REGISTRY_BATCH,
      "turn",
    );
    this.outbox = new OutboxRelay(this.sql.query, this.names, (err) => this.log.relayFailed(err));
    this.groupChanges = new GroupChanges(
      this.sql,
      this.names,
      this.nodeId,
      this.index,
      this.log,
      this.options.publishTimeoutMs,
    );
  }

  /** The schema this backplane lives in. */
  get schema(): string {
    return this.options.schema;
  }

  /**
   * Runs the migrations (unless `migrate: false`), registers this node, starts reading at the current
   * head of the log (older traffic is not replayed), LISTENs, and starts the heartbeat, sweep, poll and
   * trim timers. Rejects with BackplaneUnavailableError when the database cannot be reached.
   */
  async start(handler: BackplaneEventHandler): Promise<void> {
    if (this.state !== "new") throw new Error("start() may be called only once.");
    this.state = "starting";
    const query = this.sql.query;
    this.handler = handler;
    try {
      if (this.options.migrate) await this.runMigrations();
      await liveness.registerNode(query, this.names, this.nodeId, this.options.description);
      this.registered = true;
      const head = await readHead(query, this.names);
      this.reader = new LogReader(
        this.sql,
        this.names,
        this.nodeId,
        this.options.readBatchSize,
        this.index,
        handler,
        this.log,
        {
          onGroupChangesApplied: (seq) => {
            registry
              .recordAppliedGroupChange(this.sql.query, this.names, this.nodeId, seq)
              .catch((err: unknown) => this.log.readFailed(this.nodeId, seq, err));
          },
          onControl: (seq, hub, envelope) => this.onControlRow(seq, hub, envelope),
          listenSession: () => this.listener?.session,
        },
      );
      this.reader.start(head);
      this.listener = new WakeupListener({
        connectionString: this.options.connectionString,
        names: this.names,
        nodeId: this.nodeId,
        log: this.log,
        stats: this.counters,
        onNotice: (notice) => (notice ? this.reader?.offer(notice) : this.reader?.request()),
        onOutbox: () => this.relayOutbox(),
        onReconnected: () => {
          this.reader?.request();
          // The session (and the lock) was lost: if this node was swept meanwhile, register again now.
          void this.maintenance.heartbeat();
        },
        onSession: (session) => this.livenessLock.take(session),
        onSessionLost: () => {
          this.livenessLock.sessionLost();
          this.arrivals.notAlone(); // an arrival may come while the session is down
        },
      });
      await this.listener.start();
      // One read in the LISTEN session: from then on the gaps between this node's notices hold nothing for it.
      this.reader.request();
      await this.reader.idle();
      this.every(this.options.pollIntervalMs, () => this.reader?.request());
      this.every(this.options.heartbeatIntervalMs, () => void this.maintenance.heartbeat());
      this.every(this.options.livenessProbeIntervalMs, () => void this.maintenance.probe());
      this.every(this.options.retention.intervalMs, () => void this.maintenance.trim());
      // A safety net for staged sends whose wake-up was missed (the LISTEN session was down).
      this.every(this.options.heartbeatIntervalMs, () => this.relayOutbox());
      // Last, with the timers running: the wait may outlast a dead node, which they sweep meanwhile.
      await this.announceArrival();
      this.state = "started";
      this.log.started(this.nodeId, this.options.schema, head);
    } catch (err) {
      this.closing = this.shutdown(false);
      await this.closing;
      throw new BackplaneUnavailableError(
        `The PostgreSQL backplane could not start: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
  }

  /**
   * Writes what is queued, stops reading, unregisters this node (its connections and memberships go
   * with it) and closes every database connection. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown(true);
    return this.closing;
  }

  /**
   * Before a graceful stop: unregisters every connection of this node (sends from now on report them as not
   * connected, until they are back elsewhere), then resolves once this node has delivered every row that
   * counted them. Close the connections after it, and nothing a send confirmed is lost with them.
   * Rejects with BackplaneUnavailableError when the database cannot be reached, or when the log is not
   * read within `publishTimeoutMs`.
   */
  async drain(): Promise<void> {
    this.ensureStarted();
    // No registration from now on; those already on their way commit first, so the drain removes them too.
    this.draining = true;
    await Promise.allSettled([...this.registering]);
    const seq = await this.registryQuery(() =>
      registry.drainNode(this.sql, this.names, this.nodeId, encodeDrained(this.nodeId)),
    );
    if ((this.reader?.position ?? 0) >= seq) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drainWaiters.delete(seq);
        reject(new BackplaneUnavailableError("The log was not read up to this node's drain in time."));
      }, this.options.publishTimeoutMs);
      timer.unref();
      this.drainWaiters.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** A row of the log that is neither a message nor a group change, read in log order with them. */
  private onControlRow(seq: number, hub: string, envelope: ControlEnvelope): void {
    switch (envelope.type) {
      case EnvelopeType.Drained:
        return this.reachedDrainMarker(envelope.nodeId, seq);
      case EnvelopeType.Arrived:
        return this.arrivals.arrived(this.sql.query, this.names, this.nodeId, envelope.nodeId, seq, this.log);
      case EnvelopeType.Disconnect:
        return this.handler?.disconnect?.(hub, envelope.connectionId);
      case EnvelopeType.ClientResult: {
        const { connectionId, invocationId, outcome } = envelope;
        return this.handler?.deliverClientResult?.({ hub, connectionId, invocationId, outcome });
      }
      default:
        return this.moves.onControl(seq, hub, envelope);
    }
  }

  /** The reader delivered this node's drain marker: everything before it is delivered too. */
  private reachedDrainMarker(nodeId: string, seq: number): void {
    if (nodeId !== this.nodeId) return;
    this.drainWaiters.get(seq)?.();
    this.drainWaiters.delete(seq);
  }

  /**
   * For tests: stops every timer and connection without unregistering, as a killed process would. The
   * node's rows stay until another node sweeps them.
   */
  crash(): Promise<void> {
    this.closing ??= this.shutdown(false);
    return this.closing;
  }

  /** 32 random bytes created once per schema by the first node that asks; every node reads the same. */
  clusterSecret(): Promise<Uint8Array> {
    this.secret ??= registry.clusterSecret(this.sql.query, this.names).catch((err: unknown) => {
      this.secret = undefined;
      throw unavailable(err);
    });
    return this.secret;
  }

  /**
   * Records a connection of this node; sends written after this resolves reach it, earlier ones do not.
   * Rows read while the insert runs wait on it until the insert says which of them are its own.
   */
  async addConnection(connection: {
    connectionId: string;
    hub: string;
    userId: string;
    resumable?: boolean;
  }): Promise<void> {
    this.ensureStarted();
    if (this.draining)
      throw new BackplaneUnavailableError("This node is stopping: it takes no new connection.");
    const { hub, connectionId, userId } = connection;
    const resumable = connection.resumable === true;
    this.maintenance.forgetOrphan(hub, connectionId);
    // In the index before the insert, so a group change for it read meanwhile is not lost.
    const local = this.index.add(hub, connectionId, userId, resumable);
    try {
      const registering = this.registrations.submit({ hub, connectionId, userId, resumable });
      this.registering.add(registering);
      const { head, transaction } = await registering.finally(() => this.registering.delete(registering));
      this.deliverParked(local, this.index.markReady(local, head, transaction));
    } catch (err) {
      if (this.index.get(hub, connectionId) === local) this.index.remove(hub, connectionId);
      // The insert may have committed before the connection failed: make sure no row outlives it.
      this.maintenance.addOrphan(hub, connectionId);
      throw unavailable(err);
    }
  }

  /**
   * Forgets a connection of this node at once: nothing more is delivered to it here, and its registry
   * rows (with its memberships) are deleted. If the delete fails, this rejects and the heartbeat retries
   * it, so the registry does not keep a ghost.
   */
  async removeConnection(hub: string, connectionId: string): Promise<void> {
    this.index.remove(hub, connectionId);
    if (this.state !== "started") return;
    try {
      await this.removals.submit({ hub, connectionId });
    } catch (err) {
      this.maintenance.addOrphan(hub, connectionId);
      throw unavailable(err);
    }
  }

  /**
   * Adds a connection of any node to a group. The change is one log row addressed to the owning node, so
   * a send written after this resolves is read after it there and reaches the connection.
   * @throws UnknownConnectionError at once when no connection has that id in that hub.
   */
  async addToGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureStarted();
    const owner = await this.groupChanges.change(true, hub, connectionId, group).catch(rethrowUnavailable);
    if (owner === undefined) throw new UnknownConnectionError(connectionId);
  }

  /** Removes a connection of any node from a group; sends written after this resolves do not reach it there. */
  async removeFromGroup(hub: string, connectionId: string, group: string): Promise<void> {
    this.ensureStarted();
    await this.groupChanges.change(false, hub, connectionId, group).catch(rethrowUnavailable);
  }

  /**
   * Delivers to this node's recipients at once, from its in-memory index (so local delivery keeps working
   * while the database is away, and stays in call order with the hub layer's direct writes), then appends
   * the message to the log for the other nodes through the batching writer. Resolves after the batch
   * commits, with the recipients delivered to here plus those the registry held on other nodes at that
   * moment (a connection of ours still registering is in neither: it gets no send made before); rejects with
   * BackplaneUnavailableError when the queue is full, the write fails or is not confirmed within
   * `publishTimeoutMs` (then no other node gets it, except when the connection was lost mid-commit: the
   * error then says the outcome is unknown). A send to connections that are all ours needs no database.
   */
  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    // Traced only inside a trace (a hub method, an API request): the span's context goes with the message.
    if (activeTraceparent() === undefined) return this.publishNow(target, message);
    return sendInSpan(sendAttributes(this.nodeId, target), (traceparent) =>
      this.publishNow(target, traceparent ? { ...message, traceparent } : message),
    );
  }

  private publishNow(target: SendTarget, message: BackplaneMessage): Promise<PublishResult> {
    if (this.state !== "started") {
      return Promise.reject(new BackplaneUnavailableError(`The PostgreSQL backplane is ${this.state}.`));
    }
    let local: string[];
    let parts: DecodedTarget;
    let payload: Uint8Array | undefined;
    const movingIn: string[] = [];
    try {
      parts = targetParts(target);
      // Draining: this node's clients are being closed and counted nowhere; sends from here reach the others.
      local = this.draining ? [] : this.index.resolveForSend(target.hub, parts, movingIn);
      // Connections moving here get it from us: the log must not bring it to them from their old node too.
      if (movingIn.length > 0) parts = { ...parts, excluded: [...parts.excluded, ...movingIn] };
      // Alone, every recipient is here: the database could add no one (node-arrivals.ts). Otherwise encoded
      // before anyone has it: a message the log cannot carry fails whole, not after local delivery.
      if (this.alone) this.counters.sendsWhileAlone++;
      else if (target.kind !== "connections" || local.length < parts.ids.length)
        payload = encodeInvocation(parts, message);
    } catch (err) {
      return Promise.reject(err);
    }
    if (local.length > 0) {
      this.counters.deliveries++;
      try {
        this.handler?.deliver(target.hub, local, message);
      } catch (err) {
        this.log.handlerThrew(0, err);
      }
    }
    // Alone, or every named connection was here (parts.ids holds each once).
    if (payload === undefined) {
      return Promise.resolve({ connections: local.length, nodes: local.length > 0 ? 1 : 0 });
    }
    return this.writer.publish(target, message, parts, local.length, payload);
  }

  /**
   * Alone in the cluster (node-arrivals.ts), with the LISTEN session that would bring an arrival steady:
   * every recipient of a send is one of this node's connections.
   */
  private get alone(): boolean {
    return this.arrivals.isAlone && this.livenessLock.heldSince !== undefined;
  }

  private announceArrival(): Promise<void> {
    return this.arrivals.announce(
      this.sql.query,
      this.names,
      this.nodeId,
      this.options.nodeTimeoutMs,
      this.log,
    );
  }

  /** Where the registry says a connection lives (for a client resuming on this node). */
  async locateConnection(hub: string, connectionId: string): Promise<ConnectionLocation> {
    this.ensureStarted();
    const found = await this.registryQuery((q) =>
      registry.locateConnection(q, this.names, hub, connectionId, this.options.nodeTimeoutMs),
    );
    if (found.found === "nothing") return { kind: "unknown" };
    if (found.found === "ended") return { kind: "ended" };
    if (found.nodeId === this.nodeId) return { kind: "here" };
    return {
      kind: "elsewhere",
      nodeId: found.nodeId,
      resumable: found.resumable,
      nodeAlive: found.nodeAlive,
    };
  }

  /** Notifications kept for later in a hub (the admin page). */
  async keptNotifications(hub: string, limit: number): Promise<KeptNotifications> {
    return this.registryQuery((q) => pending.keptNotifications(q, this.names, hub, limit));
  }

  /** Closes a connection on whichever node holds it: a control row to that node, in log order. */
  async disconnect(hub: string, connectionId: string): Promise<boolean> {
    const where = await this.locateConnection(hub, connectionId);
    if (where.kind === "here") this.handler?.disconnect?.(hub, connectionId);
    else if (where.kind === "elsewhere" && where.nodeAlive)
      await this.writer.appendControl(hub, [where.nodeId], encodeDisconnect(connectionId));
    else return false;
    return true;
  }

  /** Takes a connection over from the node holding it; see connection-moves.ts for the steps. */
  takeOverConnection(hub: string, connectionId: string, from: string): Promise<Uint8Array> {
    this.ensureStarted();
    if (this.draining) {
      return Promise.reject(new ConnectionMoveError("This node is stopping: it takes no connection over."));
    }
    return this.moves.takeOver(hub, connectionId, from);
  }

  /**
   * Sends a client's answer to the node awaiting it: a control row addressed to that node alone, read
   * there in log order. Rejects with BackplaneUnavailableError when it cannot be written.
   */
  async sendClientResult(nodeId: string, result: ClientResult): Promise<void> {
    this.ensureStarted();
    const payload = encodeClientResult(result.connectionId, result.invocationId, result.outcome);
    await this.writer.appendControl(result.hub, [nodeId], payload);
  }

  /** Keeps a message for `key` until a connection takes it (at most once), for `ttlMs`. */
  async storeMessage(hub: string, key: string, message: BackplaneMessage, ttlMs: number): Promise<void> {
    await this.registryQuery((q) => stored.storeMessage(q, this.names, hub, key, message, ttlMs));
  }

  /** Removes and returns the unexpired messages kept for `key`, oldest first. */
  async takeStoredMessages(hub: string, key: string): Promise<BackplaneMessage[]> {
    return this.registryQuery((q) => stored.takeStoredMessages(q, this.names, hub, key));
  }

  /** Keeps a notification for `key` until a client confirms it (or for `ttlMs`). */
  async addPendingNotification(
    hub: string,
    key: string,
    id: string,
    message: BackplaneMessage,
    ttlMs: number,
  ): Promise<void> {
    await this.registryQuery((q) =>
      pending.addPendingNotification(q, this.names, hub, key, id, message, ttlMs),
    );
  }

  /** The unconfirmed, unexpired notifications for `key`, oldest first. */
  async pendingNotifications(hub: string, key: string): Promise<PendingNotification[]> {
    return this.registryQuery((q) => pending.pendingNotifications(q, this.names, hub, key));
  }

  /** Records a confirmation; the first one wins. Resolves with the connection whose confirmation counts. */
  async confirmNotification(hub: string, id: string, connectionId: string): Promise<string | undefined> {
    return this.registryQuery((q) => pending.confirmNotification(q, this.names, hub, id, connectionId));
  }

  async notificationConfirmation(hub: string, id: string): Promise<NotificationConfirmation> {
    return this.registryQuery((q) => pending.notificationConfirmation(q, this.names, hub, id));
  }

  /** The user's connections in the hub on live nodes (heartbeat within `nodeTimeoutMs`), oldest first. */
  async userConnections(hub: string, userId: string): Promise<ConnectionInfo[]> {
    return this.registryQuery((q) =>
      presence.userConnections(q, this.names, hub, userId, this.options.nodeTimeoutMs),
    );
  }

  /** The group's connection ids, sorted; a dead node's members go when it is swept. */
  async groupMembers(hub: string, group: string): Promise<string[]> {
    return this.registryQuery((q) => presence.groupMembers(q, this.names, hub, group));
  }

  /** Records where the other nodes reach this one (for requests they forward here). */
  async advertiseUrl(url: string): Promise<void> {
    this.ensureStarted();
    this.advertisedUrl = url; // also written when the node re-registers after being swept
    await this.registryQuery((q) => directory.advertiseNodeUrl(q, this.names, this.nodeId, url));
  }

  /** Records the hubs this node serves, for sends from SQL (sql-publishing.ts). */
  async declareHubs(hubs: readonly HubDeclaration[]): Promise<void> {
    this.ensureStarted();
    await this.registryQuery((q) => declareHubs(q, this.names, hubs));
  }

  /** The URL a live node advertised (see NodeUrls for how it is read). */
  nodeUrl(nodeId: string): Promise<string | undefined> {
    return this.nodeUrls.get(nodeId);
  }

  async connection(hub: string, connectionId: string) {
    const timeout = this.options.nodeTimeoutMs;
    return this.registryQuery((q) => presence.connectionPresence(q, this.names, hub, connectionId, timeout));
  }

  async onlineUsers(hub: string): Promise<string[]> {
    return this.registryQuery((q) => presence.onlineUsers(q, this.names, hub, this.options.nodeTimeoutMs));
  }

  async hubCounts(): Promise<HubCount[]> {
    return this.registryQuery((q) => presence.hubCounts(q, this.names, this.options.nodeTimeoutMs));
  }

  /** Nodes whose heartbeat is within `nodeTimeoutMs`, oldest first, with their connection counts. */
  async nodes(): Promise<NodeInfo[]> {
    return this.registryQuery((q) => presence.liveNodes(q, this.names, this.options.nodeTimeoutMs));
  }

  /**
   * "degraded" while the log cannot be read (the database is down or unreachable): this node's own
   * connections still get its sends, but no other node's, and sends to other nodes fail.
   */
  health(): { status: "ok" | "degraded"; reason?: string } {
    if (this.state !== "started")
      return { status: "degraded", reason: `The PostgreSQL backplane is ${this.state}.` };
    const failure = this.reader?.failure;
    return failure
      ? { status: "degraded", reason: `The message log cannot be read: ${failure}` }
      : { status: "ok" };
  }

  /** A snapshot of this node's counters (statements sent, batches, rows written and read, wake-ups…). */
  stats(): PostgresBackplaneStats {
    return { ...this.counters };
  }

  private async registryQuery<T>(run: (query: Sql["query"]) => Promise<T>): Promise<T> {
    if (this.state === "closed") throw new BackplaneUnavailableError("The PostgreSQL backplane is closed.");
    return run(this.sql.query).catch((err: unknown) => {
      throw unavailable(err);
    });
  }

  /** On its own connection: the pool's statement_timeout would cut short the wait for another node's run. */
  private async runMigrations(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: "switchboard migrate",
    });
    client.on("error", (err) => this.log.poolError(err));
    await client.connect();
    try {
      await migrateWith(client, this.options.schema, (m) =>
        this.log.migrationApplied(this.options.schema, m.version, m.name),
      );
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Stops everything; `graceful` also drains the writer and unregisters, as a clean exit does. */
  private async shutdown(graceful: boolean): Promise<void> {
    const wasStarted = this.state === "started";
    const failedStart = this.state === "starting";
    this.state = "closed";
    this.maintenance.stop();
    this.moves.stop();
    this.livenessLock.stop();
    for (const timer of this.timers.splice(0)) clearInterval(timer);
    await this.writer.close("The PostgreSQL backplane is closed.", graceful && wasStarted);
    await this.outbox.idle();
    await this.reader?.stop();
    await this.listener?.close();
    if ((graceful && wasStarted) || (failedStart && this.registered)) {
      await liveness
        .unregisterNode(this.sql.query, this.names, this.nodeId)
        .catch((err: unknown) => this.log.unregisterFailed(this.nodeId, err));
    }
    this.index.clear();
    await this.pool.end().catch(() => {});
    await this.heartbeatPool.end().catch(() => {});
    if (wasStarted) this.log.stopped(this.nodeId);
  }

  /** Delivers rows that waited on a connection until it knew which were its own, oldest first. */
  private deliverParked(connection: LocalConnection, rows: ParkedRow[]): void {
    for (const row of rows) {
      this.counters.deliveries++;
      try {
        this.handler?.deliver(connection.hub, [connection.connectionId], row.message);
      } catch (err) {
        this.log.handlerThrew(row.seq, err);
      }
    }
  }

  /** Relays sends from SQL that committed in the outbox (transactions with a frozen snapshot). */
  private relayOutbox(): void {
    if (this.state === "started") this.outbox.request();
  }

  private every(ms: number, tick: () => void): void {
    const timer = setInterval(tick, ms);
    timer.unref(); // the server, not the backplane, decides how long the process lives
    this.timers.push(timer);
  }

  private ensureStarted(): void {
    if (this.state !== "started")
      throw new BackplaneUnavailableError(`The PostgreSQL backplane is ${this.state}.`);
  }
}

/** Creates a PostgreSQL backplane; call `start(handler)` to connect. See {@link PostgresBackplaneOptions}. */
export function postgres(options: PostgresBackplaneOptions): PostgresBackplane {
  return new PostgresBackplane(options);
}

function rethrowUnavailable(err: unknown): never {
  throw unavailable(err);
}

function unavailable(err: unknown): Error {
  if (
    err instanceof BackplaneUnavailableError ||
    err instanceof UnknownConnectionError ||
    err instanceof registry.ConnectionTakenError
  ) {
    return err;
  }
  return new BackplaneUnavailableError(
    `The PostgreSQL backplane's database failed: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}
