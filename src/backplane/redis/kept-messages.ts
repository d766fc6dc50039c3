/**
 * What the Redis backplane keeps for later: messages stored for an identifier nobody held (a list per
 * identifier, taken at most once by a script), and notifications kept until a client confirms them (a hash
 * each, with sorted sets listing them per identifier and per hub). Every key expires with what it holds.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type {
  BackplaneMessage,
  KeptNotifications,
  NotificationConfirmation,
  PendingNotification,
} from "../backplane.js";
import { decodeEnvelope, encodeInvocation, EnvelopeType } from "../shared/envelopes.js";
import { TargetKind } from "../shared/targets.js";
import { checkedTtlMs } from "../shared/ttl.js";
import type { RedisKeys } from "./keys.js";
import { hash, text, texts, type RedisLink, type Reply } from "./link.js";
import { confirmScript, takeScript } from "./scripts.js";

/** How long a confirmed notification is still reported as confirmed. */
const CONFIRMED_KEPT_MS = 10 * 60_000;

const encoder = new Encoder();
const decoder = new Decoder();

export class KeptMessages {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    /** Runs Redis commands, turning their failure into a BackplaneUnavailableError. */
    private readonly unavailableOnErrorFn: <T>(commands: () => Promise<T>) => Promise<T>,
  ) {}

  async store(hub: string, key: string, message: BackplaneMessage, ttl: number): Promise<void> {
    const ttlMs = checkedTtlMs(ttl);
    const listKey = this.keys.stored(hub, key);
    const envelope = encodeInvocation({ kind: TargetKind.connections, ids: [], excluded: [] }, message);
    const entry = Buffer.from(encoder.encode([Date.now() + ttlMs, envelope]));
    await this.unavailableOnErrorFn(async () => {
      await this.link.send(listKey, ["RPUSH", listKey, entry]);
      await this.extendExpiry(listKey, ttlMs);
      // The list of identifiers lives as long as its longest-lived message could (and list() prunes it).
      const storedKeys = this.keys.storedKeys(hub);
      await this.link.send(storedKeys, ["SADD", storedKeys, key]);
      await this.extendExpiry(storedKeys, ttlMs);
    });
  }

  async take(hub: string, key: string): Promise<BackplaneMessage[]> {
    const listKey = this.keys.stored(hub, key);
    const entries = await this.unavailableOnErrorFn(() => takeScript.run(this.link, [listKey], []));
    await this.forget(hub, key);
    return storedEntries(entries)
      .filter((e) => e.expiresAt > Date.now())
      .map((e) => e.message);
  }

  async addPending(
    hub: string,
    key: string,
    id: string,
    message: BackplaneMessage,
    ttl: number,
  ): Promise<void> {
    const ttlMs = checkedTtlMs(ttl);
    const now = preciseNow();
    const envelope = Buffer.from(
      encodeInvocation({ kind: TargetKind.connections, ids: [], excluded: [] }, message),
    );
    const hashKey = this.keys.pending(hub, id);
    await this.unavailableOnErrorFn(async () => {
      await this.link.send(hashKey, [
        "HSET",
        hashKey,
        "key",
        key,
        "message",
        envelope,
        "createdAt",
        String(now),
        "expiresAt",
        String(Date.now() + ttlMs),
      ]);
      await this.link.send(hashKey, ["PEXPIRE", hashKey, String(ttlMs)]);
      for (const listKey of [this.keys.pendingOf(hub, key), this.keys.pendingAll(hub)]) {
        await this.link.send(listKey, ["ZADD", listKey, String(now), id]);
        await this.extendExpiry(listKey, ttlMs + CONFIRMED_KEPT_MS);
      }
    });
  }

  async pending(hub: string, key: string): Promise<PendingNotification[]> {
    const kept = await this.pendingList(hub, this.keys.pendingOf(hub, key), false, -1);
    return kept
      .filter((n) => n.confirmedBy === undefined && n.expiresAt > Date.now())
      .map((n) => ({ id: n.id, message: n.message }));
  }

  async confirm(hub: string, id: string, connectionId: string): Promise<string | undefined> {
    const reply = await this.unavailableOnErrorFn(() =>
      confirmScript.run(
        this.link,
        [this.keys.pending(hub, id)],
        [connectionId, String(Date.now()), String(CONFIRMED_KEPT_MS)],
      ),
    );
    return text(reply);
  }

  async confirmation(hub: string, id: string): Promise<NotificationConfirmation> {
    const fields = hash(
      await this.unavailableOnErrorFn(() =>
        this.link.send(this.keys.pending(hub, id), ["HGETALL", this.keys.pending(hub, id)]),
      ),
    );
    const confirmedBy = fields.get("confirmedBy");
    if (confirmedBy !== undefined) return { state: "confirmed", connectionId: confirmedBy };
    return fields.size > 0 && Number(fields.get("expiresAt")) > Date.now()
      ? { state: "pending" }
      : { state: "unknown" };
  }

  async list(hub: string, limit: number): Promise<KeptNotifications> {
    const identifiers = texts(
      await this.link.send(this.keys.storedKeys(hub), ["SMEMBERS", this.keys.storedKeys(hub)]),
    );
    const stored = (
      await Promise.all(
        identifiers.map(async (identifier) => {
          const listKey = this.keys.stored(hub, identifier);
          const entries = storedEntries(await this.link.send(listKey, ["LRANGE", listKey, "0", "-1"]));
          // Its list expired: the identifier leaves the list of identifiers too.
          if (entries.length === 0) await this.forget(hub, identifier);
          return entries.map((e) => ({
            identifier,
            method: e.message.target,
            expiresAt: new Date(e.expiresAt),
          }));
        }),
      )
    )
      .flat()
      .filter((e) => e.expiresAt.getTime() > Date.now())
      .sort((a, b) => a.expiresAt.getTime() - b.expiresAt.getTime())
      .slice(0, limit);
    const pending = (await this.pendingList(hub, this.keys.pendingAll(hub), true, limit)).map((n) => ({
      id: n.id,
      identifier: n.key,
      createdAt: new Date(Math.floor(n.createdAt)),
      expiresAt: new Date(n.expiresAt),
      ...(n.confirmedBy === undefined ? {} : { confirmedBy: n.confirmedBy }),
      ...(n.confirmedAt === undefined ? {} : { confirmedAt: new Date(n.confirmedAt) }),
    }));
    return { stored, pending };
  }

  /** Takes an identifier off the hub's list of identifiers with stored messages (best effort). */
  private async forget(hub: string, key: string): Promise<void> {
    const storedKeys = this.keys.storedKeys(hub);
    await this.link.send(storedKeys, ["SREM", storedKeys, key]).catch(() => undefined);
  }

  /** A key lives at least `ttlMs` from now (never shorter than it was). */
  private async extendExpiry(key: string, ttlMs: number): Promise<void> {
    await this.link.send(key, ["PEXPIRE", key, String(ttlMs), "NX"]);
    await this.link.send(key, ["PEXPIRE", key, String(ttlMs), "GT"]);
  }

  /** Kept notifications listed in a sorted set; ids whose hash expired are dropped from it. */
  private async pendingList(hub: string, listKey: string, newestFirst: boolean, limit: number) {
    const ids = texts(
      await this.unavailableOnErrorFn(() =>
        this.link.send(
          listKey,
          newestFirst ? ["ZRANGE", listKey, "0", String(limit - 1), "REV"] : ["ZRANGE", listKey, "0", "-1"],
        ),
      ),
    );
    const found = await Promise.all(
      ids.map(async (id) => {
        const key = this.keys.pending(hub, id);
        const fields = await this.link.send(key, ["HGETALL", key]);
        const values = Array.isArray(fields) ? fields : [];
        const map = new Map<string, Reply>();
        for (let i = 0; i + 1 < values.length; i += 2) map.set(text(values[i])!, values[i + 1]!);
        if (map.size === 0) return { id, gone: true as const };
        const number = (name: string) => (map.has(name) ? Number(text(map.get(name))) : undefined);
        const envelope = decodeEnvelope(map.get("message") as Buffer);
        if (envelope.type !== EnvelopeType.Invocation)
          throw new Error("A kept notification is not an invocation.");
        return {
          id,
          gone: false as const,
          key: text(map.get("key")) ?? "",
          message: envelope.message,
          createdAt: number("createdAt") ?? 0,
          expiresAt: number("expiresAt") ?? 0,
          confirmedBy: text(map.get("confirmedBy")),
          confirmedAt: number("confirmedAt"),
        };
      }),
    );
    const gone = found.filter((n) => n.gone).map((n) => n.id);
    if (gone.length > 0) await this.link.send(listKey, ["ZREM", listKey, ...gone]).catch(() => undefined);
    return found.filter((n): n is Exclude<(typeof found)[number], { gone: true }> => !n.gone);
  }
}

function storedEntries(reply: Reply): { expiresAt: number; message: BackplaneMessage }[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((raw) => {
    const [expiresAt, envelopeBytes] = decoder.decode(raw as Buffer) as [number, Uint8Array];
    const envelope = decodeEnvelope(envelopeBytes);
    if (envelope.type !== EnvelopeType.Invocation) throw new Error("A stored message is not an invocation.");
    return { expiresAt, message: envelope.message };
  });
}

/** Wall-clock milliseconds with a fraction: two calls in one millisecond still order. */
export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}
