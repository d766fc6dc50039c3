/**
 * The registry lookups of a batch of sends, as few round trips as the cluster allows: the lookups whose
 * keys live on the same master go as one script (Redis 7's `allow-cross-slot-keys`), so a batch of sends to
 * a thousand users costs one command per master instead of one per user. When a slot moves under it (the
 * script's keys are no longer on one master), those lookups go one command each instead.
 */
import type { RedisLink, Reply } from "./link.js";
import { Script } from "./scripts.js";

export const LookupKind = {
  /** A sorted set's members (a user's connections). */
  members: "z",
  /** A set's members (a group's). */
  setMembers: "s",
  /** A hash, whole (a hub's nodes). */
  hubNodes: "h",
  /** A connection hash's `node` field. */
  connectionNode: "n",
} as const;
export type LookupKind = (typeof LookupKind)[keyof typeof LookupKind];

export interface Lookup {
  kind: LookupKind;
  key: string;
}

/** ARGV: kind, key, kind, key, … (keys in ARGV: declared keys would have to share one slot). */
const lookupScript = new Script(`#!lua flags=allow-cross-slot-keys,no-writes
local out = {}
for i = 1, #ARGV, 2 do
  local kind, key = ARGV[i], ARGV[i + 1]
  local n = (i + 1) / 2
  if kind == 'z' then out[n] = redis.call('ZRANGE', key, 0, -1)
  elseif kind == 's' then out[n] = redis.call('SMEMBERS', key)
  elseif kind == 'h' then out[n] = redis.call('HGETALL', key)
  else out[n] = redis.call('HGET', key, 'node') end
end
return out
`);

/** Each lookup's reply, in order. */
export async function lookUp(link: RedisLink, lookups: Lookup[]): Promise<Reply[]> {
  const replies: Reply[] = new Array(lookups.length);
  const byMaster = new Map<string, number[]>();
  lookups.forEach((lookup, i) => {
    const master = link.masterOf(lookup.key);
    const group = byMaster.get(master);
    if (group) group.push(i);
    else byMaster.set(master, [i]);
  });
  await Promise.all(
    [...byMaster.values()].map(async (indexes) => {
      if (indexes.length > 1) {
        try {
          const args = indexes.flatMap((i) => [lookups[i]!.kind, lookups[i]!.key]);
          const reply = await lookupScript.runOn(link, lookups[indexes[0]!]!.key, args);
          if (Array.isArray(reply)) {
            indexes.forEach((i, j) => (replies[i] = reply[j] ?? null));
            return;
          }
        } catch {
          // A slot moved, or the keys are not all on one master any more: one command each.
        }
      }
      await Promise.all(indexes.map(async (i) => (replies[i] = await one(link, lookups[i]!))));
    }),
  );
  return replies;
}

function one(link: RedisLink, { kind, key }: Lookup): Promise<Reply> {
  switch (kind) {
    case LookupKind.members:
      return link.send(key, ["ZRANGE", key, "0", "-1"]);
    case LookupKind.setMembers:
      return link.send(key, ["SMEMBERS", key]);
    case LookupKind.hubNodes:
      return link.send(key, ["HGETALL", key]);
    default:
      return link.send(key, ["HGET", key, "node"]);
  }
}
