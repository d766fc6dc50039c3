/**
 * Messages kept for a key (an identifier nobody held when it was notified) until a connection registers it.
 * A stored message is a MessagePack `[method, arguments]` pair; readers ignore unknown trailing items.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { BackplaneMessage } from "../backplane.js";
import type { Query } from "./log.js";
import type { SchemaNames } from "./names.js";
import { checkedTtlMs } from "../shared/ttl.js";

const encoder = new Encoder();
const decoder = new Decoder();

export async function storeMessage(
  query: Query,
  n: SchemaNames,
  hub: string,
  key: string,
  message: BackplaneMessage,
  ttlMs: number,
): Promise<void> {
  checkedTtlMs(ttlMs);
  const payload = encoder.encode([message.target, message.arguments]);
  await query(
    `INSERT INTO ${n.storedMessages} (hub, key, payload, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4::double precision / 1000))`,
    [hub, key, payload, ttlMs],
    `${n.statementPrefix}store`,
  );
}

/** Deletes and returns the unexpired messages for a key, oldest first; each is returned to one caller only. */
export async function takeStoredMessages(
  query: Query,
  n: SchemaNames,
  hub: string,
  key: string,
): Promise<BackplaneMessage[]> {
  const result = await query<{ id: string; payload: Buffer; expired: boolean }>(
    `DELETE FROM ${n.storedMessages} WHERE hub = $1 AND key = $2
     RETURNING id, payload, expires_at <= now() AS expired`,
    [hub, key],
    `${n.statementPrefix}take`,
  );
  return result.rows
    .filter((row) => !row.expired)
    .sort((a, b) => Number(a.id) - Number(b.id))
    .map((row) => {
      const [target, args] = decoder.decode(
        new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
      ) as [string, unknown[]];
      return { target, arguments: args };
    });
}

/** Deletes up to `batchSize` expired stored messages; returns how many. */
export async function trimExpiredStored(query: Query, n: SchemaNames, batchSize: number): Promise<number> {
  const result = await query(
    `DELETE FROM ${n.storedMessages}
     WHERE id IN (SELECT id FROM ${n.storedMessages} WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
    [batchSize],
    `${n.statementPrefix}trim_stored`,
  );
  return result.rowCount ?? 0;
}
