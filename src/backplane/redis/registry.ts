/**
 * The registry's writes: connections, their users and groups, and the sweep of dead nodes. Only the node
 * that holds a connection writes its entries (other nodes ask it to, see protocol.ts), so one connection's
 * changes are made in order, by one writer.
 *
 * What lives where (keys.ts): a node's connection sets beside its inbox (changed with a marker in it, by
 * registryScript); a connection's hash and groups; each user's and group's members as `node\nconnection`;
 * per hub, how many connections, users' connections and group members each node has.
 */
import { randomUUID } from "node:crypto";
import { member, splitMember, type RedisKeys } from "./keys.js";
import { text, texts, type RedisLink } from "./link.js";
import { encodeEntry, markerItem } from "./protocol.js";
import {
  deadNodesScript,
  eraseIfOwnedScript,
  nodeFieldScript,
  nodeInfoScript,
  registryScript,
} from "./scripts.js";

export interface ConnectionChange {
  hub: string;
  connectionId: string;
  add: boolean;
}

export interface RegisteredConnection {
  hub: string;
  connectionId: string;
  userId: string;
  resumable: boolean;
  /** When it connected (ms since the epoch, fractional: two connections of one millisecond keep their order). */
  connectedAt: number;
}

/**
 * Adds or removes connections of `nodeId` in its connection sets, with a marker `token` after them in its
 * inbox (taking back the inbox a sweep set aside, else creating it when it is missing). Resolves with the
 * marker's entry id.
 */
export async function changeConnectionSets(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  changes: ConnectionChange[],
  token: string,
  inboxMaxEntries: number,
): Promise<string> {
  const setKeys = new Map<string, number>();
  const args: (string | Buffer)[] = [String(inboxMaxEntries), encodeEntry([markerItem(token)])];
  for (const change of changes) {
    const setKey = keys.nodeConnections(nodeId, change.hub);
    let index = setKeys.get(setKey);
    if (index === undefined) setKeys.set(setKey, (index = setKeys.size + 4));
    args.push(String(index), change.hub, change.add ? "+" : "-", change.connectionId);
  }
  const reply = await registryScript.run(
    link,
    [keys.inbox(nodeId), keys.nodeHubs(nodeId), keys.sweptInbox(nodeId), ...setKeys.keys()],
    args,
  );
  return text(reply)!;
}

/** Writes what other nodes look up of a connection: its hash, and its place among its user's connections. */
export async function writeConnection(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  c: RegisteredConnection,
): Promise<void> {
  const writes = [
    link.send(keys.connection(c.hub, c.connectionId), [
      "HSET",
      keys.connection(c.hub, c.connectionId),
      "node",
      nodeId,
      "user",
      c.userId,
      "at",
      String(c.connectedAt),
      "resumable",
      c.resumable ? "1" : "0",
    ]),
    link.send(keys.hubs, ["SADD", keys.hubs, c.hub]),
  ];
  if (c.userId !== "") {
    const key = keys.user(c.hub, c.userId);
    writes.push(link.send(key, ["ZADD", key, String(c.connectedAt), member(nodeId, c.connectionId)]));
  }
  await Promise.all(writes);
}

/**
 * Marks the users of `hubs` changed (usersVersion), once a connection was added to one of them: called
 * after the user's entry is written and before the change is said to be done, so a node that reads the
 * version after that sees it changed. Each change sets a new random token: a version lost with its
 * key (a restart without the AOF) reads as none, which no node trusts.
 */
export async function markUsersChanged(
  link: RedisLink,
  keys: RedisKeys,
  hubs: Iterable<string>,
): Promise<void> {
  const token = randomUUID();
  await Promise.all(
    [...hubs].map((hub) => link.send(keys.usersVersion(hub), ["SET", keys.usersVersion(hub), token])),
  );
}

/** Erases a connection's entries, its group memberships included. */
export async function eraseConnection(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  hub: string,
  connectionId: string,
  userId: string,
): Promise<void> {
  const groupsKey = keys.connectionGroups(hub, connectionId);
  const groups = texts(await link.send(groupsKey, ["SMEMBERS", groupsKey]));
  const self = member(nodeId, connectionId);
  const erasures = groups.map((group) =>
    link.send(keys.group(hub, group), ["SREM", keys.group(hub, group), self]),
  );
  // Only this node's entry: the same id registered since by another node (a move) is not ours to erase.
  erasures.push(eraseIfOwnedScript.run(link, [keys.connection(hub, connectionId), groupsKey], [nodeId]));
  if (userId !== "") erasures.push(link.send(keys.user(hub, userId), ["ZREM", keys.user(hub, userId), self]));
  await Promise.all(erasures);
}

/** Adds or removes a membership; resolves true when it changed. */
export async function changeGroup(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  hub: string,
  connectionId: string,
  group: string,
  add: boolean,
): Promise<boolean> {
  const groupKey = keys.group(hub, group);
  const groupsKey = keys.connectionGroups(hub, connectionId);
  const [changed] = await Promise.all([
    link.send(groupKey, [add ? "SADD" : "SREM", groupKey, member(nodeId, connectionId)]),
    link.send(groupsKey, [add ? "SADD" : "SREM", groupsKey, group]),
  ]);
  return changed === 1;
}

/** Sets a per-node count in a hub's hash (`field`), removing the field at 0. */
export async function setCount(link: RedisLink, key: string, field: string, count: number): Promise<void> {
  await link.send(key, count > 0 ? ["HSET", key, field, String(count)] : ["HDEL", key, field]);
}

/**
 * Writes what this node says of itself, with an expiry so a node that vanished leaves nothing for long.
 * Resolves with whether the node was registered there before (false: swept, expired, or Redis lost its
 * data).
 */
export async function writeNodeInfo(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  fields: Record<string, string>,
  ttlMs: number,
): Promise<boolean> {
  const args = [String(ttlMs), ...Object.entries(fields).flat()];
  return (await nodeInfoScript.run(link, [keys.node(nodeId)], args)) === 1;
}

/** Sets one field of this node's entry, unless the node was swept (the heartbeat then writes it all). */
export async function writeNodeField(
  link: RedisLink,
  keys: RedisKeys,
  nodeId: string,
  field: string,
  value: string,
): Promise<void> {
  await nodeFieldScript.run(link, [keys.node(nodeId)], [field, value]);
}

/**
 * Removes a dead node with its connections and memberships; one node does it (a lock, held `lockMs`).
 * Resolves with the number of connections removed, or undefined when another node is at it. With
 * `ifSilentForMs`, a node that has beaten within that time after all (it was only slow) is left alone.
 * Its inbox goes too, or, with `keepInboxMs`, is set aside for that long (other nodes find no inbox, so
 * the node is gone for them): a node swept while its process was only paused takes it back when it runs
 * again (takeBackInbox, or its next registration), and delivers the sends counted for its connections
 * before the sweep.
 */
export async function sweepNode(
  link: RedisLink,
  keys: RedisKeys,
  deadNodeId: string,
  options: { lockMs: number; keepInboxMs?: number; ifSilentForMs?: number },
): Promise<number | undefined> {
  const { lockMs, keepInboxMs, ifSilentForMs } = options;
  const lock = keys.sweepLock(deadNodeId);
  if ((await link.send(lock, ["SET", lock, "1", "NX", "PX", String(lockMs)])) === null) return undefined;
  if (ifSilentForMs !== undefined) {
    const silent = texts(await deadNodesScript.run(link, [keys.nodes], [String(ifSilentForMs)]));
    if (!silent.includes(deadNodeId)) return undefined;
  }
  const hubs = texts(await link.send(keys.nodeHubs(deadNodeId), ["SMEMBERS", keys.nodeHubs(deadNodeId)]));
  let swept = 0;
  for (const hub of hubs) {
    const setKey = keys.nodeConnections(deadNodeId, hub);
    const ids = texts(await link.send(setKey, ["SMEMBERS", setKey]));
    for (const connectionId of ids) {
      const connKey = keys.connection(hub, connectionId);
      const user = text(await link.send(connKey, ["HGET", connKey, "user"])) ?? "";
      await eraseConnection(link, keys, deadNodeId, hub, connectionId, user);
      swept++;
    }
    await Promise.all([
      link.send(keys.hubNodes(hub), ["HDEL", keys.hubNodes(hub), deadNodeId]),
      dropNodeFields(link, keys.hubUsers(hub), deadNodeId),
      dropNodeFields(link, keys.hubGroups(hub), deadNodeId),
      link.send(setKey, ["DEL", setKey]),
    ]);
  }
  const inbox = keys.inbox(deadNodeId);
  if (keepInboxMs === undefined) await link.send(inbox, ["DEL", inbox, keys.nodeHubs(deadNodeId)]);
  else {
    const setAside = keys.sweptInbox(deadNodeId);
    if (await renamed(link, inbox, setAside, false))
      await link.send(setAside, ["PEXPIRE", setAside, String(keepInboxMs)]);
    await link.send(keys.nodeHubs(deadNodeId), ["DEL", keys.nodeHubs(deadNodeId)]);
  }
  await link.send(keys.node(deadNodeId), ["DEL", keys.node(deadNodeId)]);
  await link.send(keys.nodes, ["ZREM", keys.nodes, deadNodeId]);
  return swept;
}

/**
 * A node swept while it was paused takes its inbox back, before anything of its own recreates it: the
 * sends counted for its connections before the sweep are read from its cursor on. False when there was
 * none to take (it expired, or the node was swept for good).
 */
export async function takeBackInbox(link: RedisLink, keys: RedisKeys, nodeId: string): Promise<boolean> {
  const inbox = keys.inbox(nodeId);
  if (!(await renamed(link, keys.sweptInbox(nodeId), inbox, true))) return false;
  await link.send(inbox, ["PERSIST", inbox]);
  return true;
}

/** RENAME (or RENAMENX) that resolves false when the source key does not exist. */
async function renamed(link: RedisLink, from: string, to: string, unlessTaken: boolean): Promise<boolean> {
  try {
    const reply = await link.send(from, [unlessTaken ? "RENAMENX" : "RENAME", from, to]);
    return reply !== 0;
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return false;
    throw err;
  }
}

/** Removes the `node\n…` fields of one node from a hub's hash. */
async function dropNodeFields(link: RedisLink, key: string, nodeId: string): Promise<void> {
  const fields = texts(await link.send(key, ["HKEYS", key])).filter((f) => splitMember(f)[0] === nodeId);
  if (fields.length > 0) await link.send(key, ["HDEL", key, ...fields]);
}
