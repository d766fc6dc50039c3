import { TargetKind, type DecodedTarget, type HandedOverGroup } from "./targets.js";
import type { BackplaneMessage } from "../backplane.js";
import { indexAdd, indexRemove, type NameIndex } from "./name-index.js";

/**
 * Where a connection of this node stands:
 * - `registering`: its registry row is being written. This node's own sends skip it (as if they came
 *   before it connected), and rows read for it are parked until the registration tells from which seq on
 *   they are its own.
 * - `ready`: this node's sends reach it directly; rows after `sinceSeq` are delivered to it.
 * - `moving-in`: taken over from another node. This node's sends reach it directly and name it as
 *   excluded in the log, so the old node does not deliver them too; rows read for it are parked until
 *   the move is in force (its marker row gives `sinceSeq`), and it is then `ready`.
 * - `leaving`: moving to another node. This node's sends go through the log (the registry decides where
 *   it is); rows read for it are still delivered until the move's marker row, where it leaves the index.
 */
export type LocalState = "registering" | "ready" | "moving-in" | "leaving";

/**
 * Which registrations and group joins the writer of a log row had seen when it chose the row's recipients
 * (PostgreSQL: the snapshot of its statement, against the transactions that made them). A row numbered
 * after a connection's registration, or a member's join, may still have been resolved before it committed:
 * delivered to that connection, it would reach one the sender never counted.
 */
export interface WriterView {
  saw(change: number): boolean;
}

/** A connection of this node, as the reader needs it. */
export interface LocalConnection {
  readonly connectionId: string;
  readonly hub: string;
  readonly userId: string;
  /** It agreed to stateful reconnect: it may move to another node. */
  readonly resumable: boolean;
  state: LocalState;
  /**
   * Log rows at or below this seq predate the connection (or its arrival here) and are not delivered to
   * it. Infinity while it is registering or moving in: rows read meanwhile are parked on it.
   */
  sinceSeq: number;
  /**
   * What identifies its registration to a {@link WriterView} (PostgreSQL: the registering transaction),
   * when the backplane tells: rows whose writer had not seen it are not delivered to it.
   */
  registration: number | undefined;
  readonly groups: ReadonlySet<string>;
  /**
   * Per group, the seq of the newest change applied. A change is applied twice (at once by the node that
   * made it, and again when its log row is read) or late (a row of another node read after a newer
   * change of ours): only a newer seq may change the membership, so it always ends as the log orders it.
   */
  readonly groupSeqs: ReadonlyMap<string, number>;
  /**
   * Per group joined, what identifies the change that made the membership to a {@link WriterView}, when
   * the backplane tells (undefined until one does): a row whose writer had not seen it does not reach
   * the connection as a member of that group.
   */
  readonly joinedBy: ReadonlyMap<string, number> | undefined;
}

/** A row read for a connection before it knew from which seq on rows are its own. */
export interface ParkedRow {
  seq: number;
  message: BackplaneMessage;
  /** What the row's writer had seen, when the backplane tells. */
  writer?: WriterView;
}

/** The index's own view of a connection: its groups are written here only. */
interface IndexedConnection extends LocalConnection {
  groups: Set<string>;
  groupSeqs: Map<string, number>;
  joinedBy: Map<string, number> | undefined;
  parked: ParkedRow[] | undefined;
}

// What a connection that never changed groups holds: shared, never written (a connection gets its own on
// its first group change). Most connections join no group, and an empty Set and Map cost ~330 bytes.
const noGroups = new Set<string>();
const noGroupSeqs = new Map<string, number>();

/**
 * hub → user id → the user's connection here, or a set of them when it has several: most users have one
 * connection on a node, and a Set for one id costs ~180 bytes.
 */
type UserIndex = Map<string, Map<string, string | Set<string>>>;

/**
 * This node's connections, their users and their groups, in memory, so a reader turns a log row into
 * local connection ids without a query. Connections are added and removed by this node; group
 * memberships change only when the reader applies a group-change row, so they follow log order.
 */
export class LocalIndex {
  /** hub → connection id → connection. */
  private readonly byHub = new Map<string, Map<string, IndexedConnection>>();
  /** hub → user id → connection id(s). */
  private readonly users: UserIndex = new Map();
  /** hub → group → connection ids. */
  private readonly groups: NameIndex = new Map();

  get size(): number {
    let size = 0;
    for (const connections of this.byHub.values()) size += connections.size;
    return size;
  }

  get(hub: string, connectionId: string): LocalConnection | undefined {
    return this.byHub.get(hub)?.get(connectionId);
  }

  /**
   * Adds a connection `registering` (or `moving-in`), receiving nothing until {@link markReady}. Adding
   * one that is already here replaces it but keeps its groups, as the registry's upsert keeps its
   * memberships.
   */
  add(
    hub: string,
    connectionId: string,
    userId: string,
    resumable = false,
    state: "registering" | "moving-in" = "registering",
  ): LocalConnection {
    const previous = this.byHub.get(hub)?.get(connectionId);
    this.remove(hub, connectionId);
    const groups = previous?.groups ?? noGroups;
    const groupSeqs = previous?.groupSeqs ?? noGroupSeqs;
    const joinedBy = previous?.joinedBy;
    const connection: IndexedConnection = {
      connectionId,
      hub,
      userId,
      resumable,
      state,
      sinceSeq: Infinity,
      registration: undefined,
      groups,
      groupSeqs,
      joinedBy,
      parked: undefined,
    };
    let connections = this.byHub.get(hub);
    if (!connections) this.byHub.set(hub, (connections = new Map()));
    connections.set(connectionId, connection);
    if (userId !== "") addUserConnection(this.users, hub, userId, connectionId);
    for (const group of groups) indexAdd(this.groups, hub, group, connectionId);
    return connection;
  }

  remove(hub: string, connectionId: string): LocalConnection | undefined {
    const connections = this.byHub.get(hub);
    const connection = connections?.get(connectionId);
    if (!connections || !connection) return undefined;
    connections.delete(connectionId);
    if (connections.size === 0) this.byHub.delete(hub);
    if (connection.userId !== "") removeUserConnection(this.users, hub, connection.userId, connectionId);
    for (const group of connection.groups) indexRemove(this.groups, hub, group, connectionId);
    return connection;
  }

  /**
   * Applies a group change with its log seq (and what identifies the change to a {@link WriterView}, when
   * the backplane tells); changes for connections not (or no longer) here, and changes as old as or older
   * than the one in force for that membership, are ignored.
   */
  applyGroupChange(
    hub: string,
    connectionId: string,
    group: string,
    add: boolean,
    seq: number,
    madeBy?: number,
  ): void {
    this.applyChange(hub, connectionId, group, add, seq, false, madeBy);
  }

  /**
   * Applies a change this node made to its own connection while the log's head was `head` (PostgreSQL:
   * registry.ts changeGroups): log rows up to the head are older and no longer apply, later ones still
   * do, and so does a later change of its own made at the same head.
   */
  applyOwnGroupChange(
    hub: string,
    connectionId: string,
    group: string,
    add: boolean,
    head: number,
    madeBy?: number,
  ): void {
    this.applyChange(hub, connectionId, group, add, head, true, madeBy);
  }

  private applyChange(
    hub: string,
    connectionId: string,
    group: string,
    add: boolean,
    seq: number,
    sameSeqApplies: boolean,
    madeBy: number | undefined,
  ): void {
    const connection = this.byHub.get(hub)?.get(connectionId);
    if (!connection) return;
    const applied = connection.groupSeqs.get(group) ?? 0;
    if (seq < applied || (seq === applied && !sameSeqApplies)) return;
    if (connection.groups === noGroups) {
      connection.groups = new Set();
      connection.groupSeqs = new Map();
    }
    connection.groupSeqs.set(group, seq);
    if (add) {
      connection.groups.add(group);
      indexAdd(this.groups, hub, group, connectionId);
      if (madeBy !== undefined) (connection.joinedBy ??= new Map()).set(group, madeBy);
      else connection.joinedBy?.delete(group);
    } else {
      connection.groups.delete(group);
      indexRemove(this.groups, hub, group, connectionId);
      connection.joinedBy?.delete(group);
    }
  }

  /**
   * The connection's registration (or move) is in force from `sinceSeq` on: it is `ready`, and the rows
   * parked on it that are its own (after `sinceSeq`, by writers that saw `registration`) are returned,
   * oldest first, for delivery now.
   */
  markReady(connection: LocalConnection, sinceSeq: number, registration?: number): ParkedRow[] {
    const indexed = connection as IndexedConnection;
    indexed.state = "ready";
    indexed.sinceSeq = sinceSeq;
    indexed.registration = registration;
    const parked = indexed.parked ?? [];
    indexed.parked = undefined;
    return parked.filter((row) => row.seq > sinceSeq && writerSaw(row.writer, registration));
  }

  /** Keeps a row read for a connection that does not know yet from which seq on rows are its own. */
  park(connection: LocalConnection, row: ParkedRow): void {
    ((connection as IndexedConnection).parked ??= []).push(row);
  }

  /** Applies group memberships handed over with a connection that moved here, each with its seq. */
  applyHandedOverGroups(hub: string, connectionId: string, groups: readonly HandedOverGroup[]): void {
    for (const { group, seq, member } of groups) this.applyGroupChange(hub, connectionId, group, member, seq);
  }

  /** The memberships (and seqs) of a connection, for handing it over to another node. */
  groupsOf(connection: LocalConnection): HandedOverGroup[] {
    return [...connection.groupSeqs].map(([group, seq]) => ({
      group,
      seq,
      member: connection.groups.has(group),
    }));
  }

  /**
   * The local connections a row with this seq and target is for, each once: those registered before the
   * row's seq whose registration its writer had seen (`writer`, when the backplane tells). Connections that
   * do not know yet from which seq on rows are theirs (registering, moving in) are put in `pending`
   * instead, when given, for the caller to park the row on them.
   */
  resolve(
    seq: number,
    hub: string,
    target: DecodedTarget,
    pending?: LocalConnection[],
    writer?: WriterView,
  ): string[] {
    return this.collect(hub, target, seq, pending, writer);
  }

  /**
   * The local connections a send this node makes now reaches directly: those `ready`, and those
   * `moving-in` (also put in `movingIn`, for the send to name them as excluded in the log).
   */
  resolveForSend(hub: string, target: DecodedTarget, movingIn: string[]): string[] {
    return this.collect(hub, target, SEND, movingIn);
  }

  private collect(
    hub: string,
    target: DecodedTarget,
    seq: number,
    aside?: (LocalConnection | string)[],
    writer?: WriterView,
  ) {
    const connections = this.byHub.get(hub);
    if (!connections) return [];
    // No closure per call: this runs for every message a node sends or reads.
    const found: Found = {
      connections,
      seq,
      excluded: target.excluded.length > 0 ? new Set(target.excluded) : undefined,
      ids: new Set<string>(),
      aside,
      writer,
    };
    switch (target.kind) {
      case TargetKind.all:
        for (const id of connections.keys()) consider(found, id);
        break;
      case TargetKind.connections:
        for (const id of target.ids) consider(found, id);
        break;
      case TargetKind.groups:
        for (const group of target.ids) {
          for (const id of this.groups.get(hub)?.get(group) ?? []) consider(found, id, group);
        }
        break;
      case TargetKind.users:
        for (const user of target.ids) {
          const ids = this.users.get(hub)?.get(user);
          if (typeof ids === "string") consider(found, ids);
          else for (const id of ids ?? []) consider(found, id);
        }
        break;
    }
    return [...found.ids];
  }

  /** The users with a connection here in the hub, sorted. */
  userIds(hub: string): string[] {
    return [...(this.users.get(hub)?.keys() ?? [])].sort();
  }

  /** How many groups of the hub have a member here. */
  groupCount(hub: string): number {
    return this.groups.get(hub)?.size ?? 0;
  }

  /** Every connection, for re-registering after this node was swept. */
  all(): LocalConnection[] {
    return [...this.byHub.values()].flatMap((connections) => [...connections.values()]);
  }

  clear(): void {
    this.byHub.clear();
    this.users.clear();
    this.groups.clear();
  }
}

/** The `seq` of a send this node makes now, rather than of a row read from the log. */
const SEND = -1;

/** What {@link LocalIndex.resolve} collects into. */
interface Found {
  connections: Map<string, LocalConnection>;
  /** The row's seq, or {@link SEND}. */
  seq: number;
  excluded: Set<string> | undefined;
  ids: Set<string>;
  /** Reading: connections to park the row on. Sending: ids of connections moving in. */
  aside: (LocalConnection | string)[] | undefined;
  /** Reading: what the row's writer had seen, when the backplane tells. */
  writer: WriterView | undefined;
}

/**
 * Adds `id` when it is here, the row or send is its own (for a row: after its registration, and, when the
 * row is for `group`, after its joining, by a writer that saw both), and it is not excluded.
 */
function consider(found: Found, id: string, group?: string): void {
  const connection = found.connections.get(id);
  if (!connection || found.excluded?.has(id)) return;
  if (found.seq === SEND) {
    if (connection.state === "ready") found.ids.add(id);
    else if (connection.state === "moving-in" && !found.ids.has(id)) {
      found.ids.add(id);
      found.aside?.push(id);
    }
    return;
  }
  if (connection.sinceSeq < found.seq) {
    const joinedBy = group === undefined ? undefined : connection.joinedBy?.get(group);
    if (writerSaw(found.writer, connection.registration) && writerSaw(found.writer, joinedBy)) {
      found.ids.add(id);
    }
  } else if (connection.sinceSeq === Infinity && found.aside && !found.aside.includes(connection)) {
    found.aside.push(connection);
  }
}

/** Whether the row's writer saw the registration or join; true when either side does not tell. */
function writerSaw(writer: WriterView | undefined, change: number | undefined): boolean {
  return writer === undefined || change === undefined || writer.saw(change);
}

function addUserConnection(index: UserIndex, hub: string, userId: string, connectionId: string): void {
  let byUser = index.get(hub);
  if (!byUser) index.set(hub, (byUser = new Map()));
  const ids = byUser.get(userId);
  if (ids === undefined || ids === connectionId) byUser.set(userId, connectionId);
  else if (typeof ids === "string") byUser.set(userId, new Set([ids, connectionId]));
  else ids.add(connectionId);
}

function removeUserConnection(index: UserIndex, hub: string, userId: string, connectionId: string): void {
  const byUser = index.get(hub);
  const ids = byUser?.get(userId);
  if (!byUser || ids === undefined) return;
  if (ids === connectionId) {
    byUser.delete(userId);
  } else if (typeof ids !== "string") {
    ids.delete(connectionId);
    // Back to the single id, so a user who had two connections costs no more than one who had one.
    if (ids.size === 1) byUser.set(userId, ids.values().next().value!);
  }
  if (byUser.size === 0) index.delete(hub);
}
