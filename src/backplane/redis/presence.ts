/** The registry's reads: who is online, in which groups, on which node. Dead nodes' entries are left out. */
import type { ConnectionInfo, HubCount, NodeInfo } from "../backplane.js";
import { splitMember, type RedisKeys } from "./keys.js";
import { hash, texts, type RedisLink, type Reply } from "./link.js";
import { liveNodesScript } from "./scripts.js";

export type IsLive = (nodeId: string) => boolean;

export async function userConnections(
  link: RedisLink,
  keys: RedisKeys,
  isLive: IsLive,
  hub: string,
  userId: string,
): Promise<ConnectionInfo[]> {
  const key = keys.user(hub, userId);
  const flat = texts(await link.send(key, ["ZRANGE", key, "0", "-1", "WITHSCORES"]));
  const list: ConnectionInfo[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [nodeId, connectionId] = splitMember(flat[i]!);
    if (isLive(nodeId)) {
      list.push({
        connectionId,
        hub,
        userId,
        nodeId,
        connectedAt: new Date(Math.floor(Number(flat[i + 1]))),
      });
    }
  }
  return list;
}

export async function groupMembers(
  link: RedisLink,
  keys: RedisKeys,
  isLive: IsLive,
  hub: string,
  group: string,
): Promise<string[]> {
  const key = keys.group(hub, group);
  return texts(await link.send(key, ["SMEMBERS", key]))
    .map(splitMember)
    .filter(([nodeId]) => isLive(nodeId))
    .map(([, connectionId]) => connectionId)
    .sort();
}

export async function connection(
  link: RedisLink,
  keys: RedisKeys,
  isLive: IsLive,
  hub: string,
  connectionId: string,
): Promise<(ConnectionInfo & { groups: string[]; resumable: boolean }) | undefined> {
  const key = keys.connection(hub, connectionId);
  const groupsKey = keys.connectionGroups(hub, connectionId);
  const [fields, groups] = await Promise.all([
    link.send(key, ["HGETALL", key]).then(hash),
    link.send(groupsKey, ["SMEMBERS", groupsKey]).then(texts),
  ]);
  const nodeId = fields.get("node");
  if (nodeId === undefined || !isLive(nodeId)) return undefined;
  return {
    connectionId,
    hub,
    userId: fields.get("user") ?? "",
    nodeId,
    connectedAt: new Date(Math.floor(Number(fields.get("at") ?? 0))),
    groups: groups.sort(),
    resumable: fields.get("resumable") === "1",
  };
}

export async function onlineUsers(link: RedisLink, keys: RedisKeys, isLive: IsLive, hub: string) {
  const fields = texts(await link.send(keys.hubUsers(hub), ["HKEYS", keys.hubUsers(hub)]));
  return distinctLive(fields, isLive).sort();
}

export async function hubCounts(link: RedisLink, keys: RedisKeys, isLive: IsLive): Promise<HubCount[]> {
  const hubs = texts(await link.send(keys.hubs, ["SMEMBERS", keys.hubs])).sort();
  const counts = await Promise.all(
    hubs.map(async (hub): Promise<HubCount> => {
      const [nodes, users, groups] = await Promise.all([
        link.send(keys.hubNodes(hub), ["HGETALL", keys.hubNodes(hub)]).then(hash),
        link.send(keys.hubUsers(hub), ["HKEYS", keys.hubUsers(hub)]).then(texts),
        link.send(keys.hubGroups(hub), ["HKEYS", keys.hubGroups(hub)]).then(texts),
      ]);
      let connections = 0;
      for (const [nodeId, count] of nodes) if (isLive(nodeId)) connections += Number(count);
      return {
        hub,
        connections,
        users: distinctLive(users, isLive).length,
        groups: distinctLive(groups, isLive).length,
      };
    }),
  );
  return counts.filter((c) => c.connections > 0);
}

/** The names of `node\nname` fields whose node is live, each once. */
function distinctLive(fields: string[], isLive: IsLive): string[] {
  const names = new Set<string>();
  for (const field of fields) {
    const [nodeId, name] = splitMember(field);
    if (isLive(nodeId)) names.add(name);
  }
  return [...names];
}

/** The nodes with a heartbeat within the timeout, with what they say of themselves. */
export async function liveNodes(link: RedisLink, keys: RedisKeys, timeoutMs: number): Promise<NodeInfo[]> {
  const reply = (await liveNodesScript.run(link, [keys.nodes], [String(timeoutMs)])) as Reply[];
  const flat = texts(reply[1]!);
  const nodes = await Promise.all(
    Array.from({ length: flat.length / 2 }, async (_, i) => {
      const nodeId = flat[2 * i]!;
      const fields = hash(await link.send(keys.node(nodeId), ["HGETALL", keys.node(nodeId)]));
      if (fields.size === 0) return undefined;
      const number = (name: string) => (fields.has(name) ? Number(fields.get(name)) : undefined);
      const info: NodeInfo = {
        nodeId,
        description: fields.get("description") ?? "",
        startedAt: new Date(number("startedAt") ?? 0),
        lastHeartbeatAt: new Date(Number(flat[2 * i + 1])),
        connectionCount: number("connections") ?? 0,
        version: fields.get("version"),
        messagesIn: number("messagesIn"),
        messagesOut: number("messagesOut"),
        errors: number("errors"),
      };
      const url = fields.get("url");
      if (url) info.url = url;
      return info;
    }),
  );
  return nodes.filter((n): n is NodeInfo => n !== undefined).sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
}
