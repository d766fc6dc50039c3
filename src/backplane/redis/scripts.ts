/**
 * The Lua scripts of the Redis backplane. Each touches keys of one hash tag only, so it runs on one master
 * of a Redis Cluster, atomically.
 */
import { createHash } from "node:crypto";
import type { RedisLink, Reply } from "./link.js";

export class Script {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  /** EVALSHA, and EVAL when this Redis has not seen the script yet (or lost it in a restart). */
  run(link: RedisLink, keys: string[], args: (string | Buffer)[]): Promise<Reply> {
    return this.send(link, keys[0], [String(keys.length), ...keys, ...args]);
  }

  /**
   * Runs a script that names its keys in ARGV (declared keys must share a slot; these need only share a
   * master, with `allow-cross-slot-keys`), on the master holding `routingKey`.
   */
  runOn(link: RedisLink, routingKey: string, args: string[]): Promise<Reply> {
    return this.send(link, routingKey, ["0", ...args]);
  }

  private async send(link: RedisLink, routingKey: string | undefined, rest: (string | Buffer)[]) {
    try {
      return await link.send(routingKey, ["EVALSHA", this.sha, ...rest]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return link.send(routingKey, ["EVAL", this.source, ...rest]);
    }
  }
}

/**
 * A batch of sends to one node. KEYS: the node's inbox, then its connection sets of the hubs involved.
 * ARGV: the inbox's length cap, the number of sends, the entry, then per send: the index (in KEYS) of
 * its hub's set, `a` (all but the ids that follow) or `i` (the ids that follow), the id count, the ids.
 *
 * The connection sets are the moment of truth: a connection counts (and its node delivers to it) exactly
 * when the entry is appended after its registration and before its removal, both of which change these
 * sets in the same atomic step as a marker in this inbox. Returns false when the inbox is gone (the node
 * was swept), else each send's count; appends nothing when every count is 0.
 */
export const sendScript = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local counts = {}
local total = 0
local n = tonumber(ARGV[2])
local i = 4
for s = 1, n do
  local set = KEYS[tonumber(ARGV[i])]
  local kind = ARGV[i + 1]
  local m = tonumber(ARGV[i + 2])
  i = i + 3
  local count = 0
  if kind == 'a' then
    count = redis.call('SCARD', set)
    for j = i, i + m - 1 do count = count - redis.call('SISMEMBER', set, ARGV[j]) end
  else
    for j = i, i + m - 1 do count = count + redis.call('SISMEMBER', set, ARGV[j]) end
  end
  i = i + m
  counts[s] = count
  total = total + count
end
if total > 0 then redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'b', ARGV[3]) end
return counts
`);

/**
 * Registers and unregisters connections of one node, with a marker in its inbox after them. KEYS: the
 * inbox, the node's set of hubs, its swept inbox, then its connection sets. ARGV: the inbox's length cap,
 * the marker entry, then per change: the index (in KEYS) of the set, the hub, `+` or `-`, the connection
 * id. Returns the marker's entry id.
 *
 * A node swept while it was only paused finds its inbox set aside: it is taken back before the marker
 * would create a new one, so the sends counted for its connections before the sweep are still read.
 */
export const registryScript = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[1])
  redis.call('PERSIST', KEYS[1])
end
local i = 3
while i <= #ARGV do
  local set = KEYS[tonumber(ARGV[i])]
  if ARGV[i + 2] == '+' then
    redis.call('SADD', set, ARGV[i + 3])
    redis.call('SADD', KEYS[2], ARGV[i + 1])
  else
    redis.call('SREM', set, ARGV[i + 3])
  end
  i = i + 4
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'b', ARGV[2])
`);

/**
 * The heartbeat: this node's score becomes Redis's clock (so nodes' own clocks never matter). KEYS: the
 * node list. ARGV: this node, the timeout. Returns the clock (ms) and the nodes silent for the timeout.
 */
export const heartbeatScript = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
return { now, redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[2]))) }
`);

/**
 * Writes a node's entry and its expiry in one step, saying whether the node was registered there: a
 * sweep by another node can then never land between the check and the write. Only this script writes the
 * `registered` field, so an entry that another write recreated after a sweep (a count, the URL) still
 * reads as swept, and the node registers everything again. KEYS: the entry. ARGV: the expiry (ms), then
 * field, value, ...
 */
export const nodeInfoScript = new Script(`
local registered = redis.call('HEXISTS', KEYS[1], 'registered')
redis.call('HSET', KEYS[1], 'registered', '1', unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return registered
`);

/**
 * Sets one field of a node's entry (its connection count, its URL) only while the node is registered
 * there: a write after a sweep must not recreate the entry, without expiry. KEYS: the entry. ARGV: the
 * field, the value. Returns 1 when it was set.
 */
export const nodeFieldScript = new Script(`
if redis.call('HEXISTS', KEYS[1], 'registered') == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`);

/**
 * Deletes a connection's hash and its groups, only while the hash names `node`: checked and deleted in one
 * step, so a move to another node between the two (the swept node was only paused) keeps its entries.
 * KEYS: the hash, its groups. ARGV: the node. Returns 1 when it deleted them.
 */
export const eraseIfOwnedScript = new Script(`
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
`);

/** Redis's clock (ms) and the live nodes with their heartbeats. KEYS: the node list. ARGV: the timeout. */
export const liveNodesScript = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return { now, redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'WITHSCORES') }
`);

/** Takes every message stored for a key, at most once. KEYS: the list. */
export const takeScript = new Script(`
local all = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return all
`);

/**
 * Confirms a kept notification; the first confirmation wins. KEYS: its hash. ARGV: the connection, the
 * time (ms), how long a confirmed one is kept. Returns the connection whose confirmation counts, or false.
 */
export const confirmScript = new Script(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local by = redis.call('HGET', KEYS[1], 'confirmedBy')
if by then return by end
redis.call('HSET', KEYS[1], 'confirmedBy', ARGV[1], 'confirmedAt', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return ARGV[1]
`);

/** The nodes silent for the timeout, on Redis's clock. KEYS: the node list. ARGV: the timeout. */
export const deadNodesScript = new Script(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
`);
