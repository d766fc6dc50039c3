/**
 * The registry lookups of a batch of sends (each key once, run by lookups.ts), and the user lookups a node
 * remembers. A remembered lookup serves the early wave (sends.ts) and, while it can be trusted, stands in
 * for a new one: while it is recent and no user of its hub has gained a connection since it was made.
 * Registrations and moves change the hub's users version before they are done (registry.markUsersChanged);
 * a batch reads it after the batch started, so a connection registered before the batch started is never
 * missed. A connection lost since needs no new lookup: where a send names it, it counts 0.
 */
import { TargetKind, type DecodedTarget } from "../shared/targets.js";
import type { RedisKeys } from "./keys.js";
import { text, texts, type RedisLink, type Reply } from "./link.js";
import { lookUp, LookupKind, type Lookup } from "./lookups.js";

/**
 * A batch's lookups: each key once (`list`, with the hub of each in `hubs`), and the indexes in it that
 * each send needs (`perSend`).
 */
export interface LookupList {
  list: Lookup[];
  hubs: string[];
  perSend: number[][];
}

/** What the last lookup of a user's key replied, and what it can be trusted for. */
export interface KnownUser {
  /** Its members as `node\nconnection`. */
  members: string[];
  /** The hub's users version read before the lookup was sent (undefined: none, never trusted). */
  version: string | undefined;
  /** When the lookup was sent (performance.now(): a clock that never steps back). */
  at: number;
}

/** How many users' last lookups a node keeps (~300 bytes each). */
const KNOWN_USERS_MAX = 10_000;

/**
 * How long a remembered lookup stands in for a new one while its hub's users version holds. It bounds
 * what a lost version change could hide: a failover to a replica that had not received it.
 */
const TRUST_MS = 2_000;

export class BatchLookups {
  /**
   * What the last lookup of each user's key replied. Users with no connection left are dropped; the
   * oldest go first past {@link KNOWN_USERS_MAX}.
   */
  private readonly knownUsers = new Map<string, KnownUser>();
  /** The users version of each hub, as last read. */
  private readonly usersVersions = new Map<string, string | undefined>();
  /** User lookups that a remembered one stood in for. */
  saved = 0;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
  ) {}

  /** The registry lookups of a batch, each key once, and which of them each send needs. */
  of(sends: readonly { hub: string; target: DecodedTarget }[]): LookupList {
    const reads = new Map<string, number>();
    const list: Lookup[] = [];
    const hubs: string[] = [];
    const read = (hub: string, kind: LookupKind, key: string) => {
      const id = `${kind}\n${key}`;
      let index = reads.get(id);
      if (index === undefined) {
        reads.set(id, (index = list.length));
        list.push({ kind, key });
        hubs.push(hub);
      }
      return index;
    };
    const k = this.keys;
    const perSend = sends.map(({ hub, target }) => {
      switch (target.kind) {
        case TargetKind.all:
          return [read(hub, LookupKind.hubNodes, k.hubNodes(hub))];
        case TargetKind.connections:
          return target.ids.map((id) => read(hub, LookupKind.connectionNode, k.connection(hub, id)));
        case TargetKind.users:
          return target.ids.map((user) => read(hub, LookupKind.members, k.user(hub, user)));
        case TargetKind.groups:
          return target.ids.map((group) => read(hub, LookupKind.setMembers, k.group(hub, group)));
        default:
          return [];
      }
    });
    return { list, hubs, perSend };
  }

  /** What this node remembers of each lookup (users only). */
  remembered(lookups: LookupList): (KnownUser | undefined)[] {
    return lookups.list.map((lookup) => this.knownUsers.get(lookup.key));
  }

  /**
   * The members of a batch's users as the batch must see them: each user's connections registered before
   * the batch started. A remembered lookup (`known`) stands in for a new one while it is recent and its
   * hub's users version, read now, is the one read before that lookup was sent. The other users are
   * looked up at once, beside the version's read: those never looked up, looked up too long ago, or filed
   * under a version the last read already found changed (in a hub where users connect all the time,
   * waiting for the read first would add a round trip to every batch).
   */
  async current(lookups: LookupList, known: (KnownUser | undefined)[]): Promise<Reply[]> {
    const now = performance.now();
    const atOnce: number[] = [];
    const ifUnchanged: number[] = [];
    known.forEach((user, i) => {
      const trusted =
        user?.version !== undefined &&
        user.version === this.usersVersions.get(lookups.hubs[i]!) &&
        now - user.at < TRUST_MS;
      (trusted ? ifUnchanged : atOnce).push(i);
    });
    // Both settle before this goes on: a lookup still running would file its reply after a newer one.
    const [read, looked] = await Promise.allSettled([
      // Read even when nothing is trusted: the lookups of the next batches are filed under it.
      this.readUsersVersions(lookups.hubs),
      this.run(lookups, atOnce),
    ]);
    if (looked.status === "rejected") throw looked.reason;
    const first = looked.value;
    // Without a version read, nothing remembered is trusted: those users are looked up too.
    const versions = read.status === "fulfilled" ? read.value : new Map<string, string>();
    const changed = ifUnchanged.filter((i) => versions.get(lookups.hubs[i]!) !== known[i]!.version);
    const second = await this.run(lookups, changed);
    this.saved += ifUnchanged.length - changed.length;
    const replies: Reply[] = known.map((user) => user?.members ?? []);
    atOnce.forEach((r, j) => (replies[r] = first[j]!));
    changed.forEach((r, j) => (replies[r] = second[j]!));
    return replies;
  }

  /**
   * Runs the lookups `only` names (else all; one script per master, lookups.ts), keeping what users' keys
   * replied, filed under the users version read before they were sent. Resolves with their replies, in
   * that order. Users' replies come back as text, the form they are kept in: node-redis's buffers are
   * views of the socket's read chunk, which a kept reply would keep alive.
   */
  async run(lookups: LookupList, only?: number[]): Promise<Reply[]> {
    const indexes = only ?? lookups.list.map((_, i) => i);
    if (indexes.length === 0) return [];
    const versions = indexes.map((i) => this.usersVersions.get(lookups.hubs[i]!));
    const at = performance.now();
    const replies = await lookUp(
      this.link,
      indexes.map((i) => lookups.list[i]!),
    );
    indexes.forEach((i, j) => {
      const lookup = lookups.list[i]!;
      if (lookup.kind !== LookupKind.members) return;
      const members = texts(replies[j]!);
      replies[j] = members;
      this.knownUsers.delete(lookup.key); // set again below, as the newest
      if (members.length === 0) return;
      this.knownUsers.set(lookup.key, { members, version: versions[j], at });
      if (this.knownUsers.size > KNOWN_USERS_MAX) {
        this.knownUsers.delete(this.knownUsers.keys().next().value as string);
      }
    });
    return replies;
  }

  /** The users version of each hub named (usually one), kept for the lookups sent after this read. */
  private async readUsersVersions(hubs: string[]): Promise<Map<string, string | undefined>> {
    const unique = [...new Set(hubs)];
    const read = await Promise.all(
      unique.map((hub) => this.link.send(this.keys.usersVersion(hub), ["GET", this.keys.usersVersion(hub)])),
    );
    const versions = new Map<string, string | undefined>();
    unique.forEach((hub, i) => {
      const version = text(read[i]!);
      versions.set(hub, version);
      this.usersVersions.set(hub, version);
    });
    return versions;
  }
}
