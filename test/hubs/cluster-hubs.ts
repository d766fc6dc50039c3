// The hubs cluster tests load into real node processes with `switchboard start --hubs test/hubs/cluster-hubs.ts`.
import type { IncomingMessage } from "node:http";
import { ClientResultError, Hub, HubError } from "../../src/index.js";

/** A hub that can send to every kind of target, so tests can drive each from any node. */
export class ClusterHub extends Hub {
  whereAmI() {
    return { connectionId: this.context.connectionId, nodeId: this.context.nodeId };
  }
  /** Returns what it was given: complex objects, dates and bytes survive the round trip. */
  echo(value: unknown) {
    return value;
  }
  /** A server-to-client stream of 1…n. */
  async *countTo(n: number) {
    for (let i = 1; i <= n; i++) yield i;
  }
  /** Fails with a message the client sees (a HubError's text reaches it without detailed errors). */
  fail(message: string) {
    throw new HubError(message);
  }
  /** Counts until the client cancels; `ClusterHub.cancelled` then holds `tag` (read with `wasCancelled`). */
  async *countUntilCancelled(tag: string) {
    try {
      for (let i = 1; ; i++) {
        yield i;
        await new Promise((resolve) => setTimeout(resolve, 20));
        if (this.signal.aborted) return;
      }
    } finally {
      ClusterHub.cancelled.add(tag);
    }
  }
  /** Whether the stream `tag` of `countUntilCancelled` has ended on this node (its connection's node). */
  wasCancelled(tag: string) {
    return ClusterHub.cancelled.has(tag);
  }
  static readonly cancelled = new Set<string>();
  /** Reads a client-to-server stream to its end. */
  async sumOf(numbers: AsyncIterable<number>) {
    let total = 0;
    for await (const n of numbers) total += n;
    return total;
  }
  toAll(text: string) {
    return this.clients.all.send("msg", text);
  }
  toAllExcept(ids: string[], text: string) {
    return this.clients.allExcept(ids).send("msg", text);
  }
  toOthers(text: string) {
    return this.clients.others.send("msg", text);
  }
  toClient(id: string, text: string) {
    return this.clients.client(id).send("msg", text);
  }
  toClients(ids: string[], text: string) {
    return this.clients.clients(ids).send("msg", text);
  }
  toGroup(group: string, text: string) {
    return this.clients.group(group).send("msg", text);
  }
  toGroups(groups: string[], text: string) {
    return this.clients.groups(groups).send("msg", text);
  }
  toGroupExcept(group: string, ids: string[], text: string) {
    return this.clients.groupExcept(group, ids).send("msg", text);
  }
  toOthersInGroup(group: string, text: string) {
    return this.clients.othersInGroup(group).send("msg", text);
  }
  toUser(user: string, text: string) {
    return this.clients.user(user).send("msg", text);
  }
  toUsers(users: string[], text: string) {
    return this.clients.users(users).send("msg", text);
  }
  /** Sends `count` numbered messages to a user, one await after the other: the receiver checks the order. */
  async sequenceToUser(user: string, count: number) {
    for (let i = 1; i <= count; i++) await this.clients.user(user).send("seq", i);
  }
  /** A server-made payload of `bytes` characters (clients may not send that much themselves). */
  largeToUser(user: string, bytes: number) {
    return this.clients.user(user).send("large", "x".repeat(bytes - 1) + "!");
  }
  /** Passes a client's message on to another connection: what the server received, checked at the other end. */
  relay(to: string, n: number) {
    return this.clients.client(to).send("relayed", n);
  }
  /** The node holding the caller's connection (stateful clients move between nodes). */
  node() {
    return this.context.nodeId;
  }
  join(group: string) {
    return this.groups.add(this.context.connectionId, group);
  }
  leave(group: string) {
    return this.groups.remove(this.context.connectionId, group);
  }
  addToGroup(connectionId: string, group: string) {
    return this.groups.add(connectionId, group);
  }
  /**
   * Asks a connection, on any node, for a client result: the value, or why none came (as data, so tests
   * read the reason whatever the server's error detail settings).
   */
  async askClient(connectionId: string, method: string, args: unknown[], timeoutMs?: number) {
    try {
      return { value: await this.clients.client(connectionId).invokeWith({ timeoutMs }, method, ...args) };
    } catch (err) {
      if (!(err instanceof ClientResultError)) throw err;
      return { reason: err.reason, message: err.message };
    }
  }
  /** Starts recording this hub's presence events on this node (once per node); see `presenceEvents`. */
  watchPresence(pollMs: number, offlineAfterMs: number) {
    ClusterHub.presenceWatch ??= this.presence.subscribe(
      (event) => ClusterHub.presenceLog.push(`${event.type} ${event.userId}`),
      { pollMs, offlineAfterMs },
    );
  }
  /** The presence events this node has seen, as "online alice" / "offline alice". */
  presenceEvents() {
    return ClusterHub.presenceLog;
  }
  static presenceWatch: (() => void) | undefined;
  static readonly presenceLog: string[] = [];
  /** A page of a group's members, through the hub's presence. */
  groupPage(group: string, limit: number, after: string | null) {
    return this.presence.groupMembers(group, { limit, ...(after === null ? {} : { after }) });
  }
  /** What the registry says about the caller's connection, from this node. */
  myPresence() {
    return this.presence.connection(this.context.connectionId);
  }
  /** When this connection connected, as its user's list of connections says (ms since the epoch). */
  async myConnectedAt() {
    const { connections } = await this.presence.user(this.context.userId ?? "");
    return connections.find((c) => c.connectionId === this.context.connectionId)?.connectedAt.getTime();
  }
  /** The write-up's notify: a status to a user id, wherever that user is connected; a clear error when nobody is. */
  async notifyUser(user: string, status: string) {
    const texts: Record<string, string> = {
      Confirmed: "Your request has been confirmed.",
      Failed: "Your request has failed.",
    };
    const result = await this.clients.user(user).send("addMessage", texts[status] ?? status);
    if (result.connections === 0) throw new HubError(`No connection for identifier '${user}'.`);
    return result;
  }
}

export const hubs = { "/hub": ClusterHub };

/** The user id comes from the `user` query parameter (tests only: no authentication). */
export function userIdProvider(req: IncomingMessage): string | undefined {
  return new URL(req.url ?? "/", "http://localhost").searchParams.get("user") ?? undefined;
}
