/**
 * Notifications kept until a client confirms them: the SQL behind PendingNotificationStore. A payload is a
 * MessagePack `[method, arguments]` pair, as for stored messages.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type {
  BackplaneMessage,
  KeptNotifications,
  NotificationConfirmation,
  PendingNotification,
} from "../backplane.js";
import type { Query } from "./log.js";
import type { SchemaNames } from "./names.js";
import { checkedTtlMs } from "../shared/ttl.js";

const encoder = new Encoder();
const decoder = new Decoder();

/** How long a confirmed notification's row stays, so a late question about it still gets "confirmed". */
const CONFIRMED_KEPT = "interval '10 minutes'";

export async function addPendingNotification(
  query: Query,
  n: SchemaNames,
  hub: string,
  key: string,
  id: string,
  message: BackplaneMessage,
  ttlMs: number,
): Promise<void> {
  checkedTtlMs(ttlMs);
  await query(
    `INSERT INTO ${n.pendingNotifications} (id, hub, key, payload, expires_at)
     VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000))`,
    [id, hub, key, encoder.encode([message.target, message.arguments]), ttlMs],
    `${n.statementPrefix}pending_add`,
  );
}

export async function pendingNotifications(
  query: Query,
  n: SchemaNames,
  hub: string,
  key: string,
): Promise<PendingNotification[]> {
  const result = await query<{ id: string; payload: Buffer }>(
    `SELECT id::text AS id, payload FROM ${n.pendingNotifications}
     WHERE hub = $1 AND key = $2 AND confirmed_by IS NULL AND expires_at > now()
     ORDER BY created_at, id`,
    [hub, key],
    `${n.statementPrefix}pending_list`,
  );
  return result.rows.map((row) => {
    const [target, args] = decoder.decode(
      new Uint8Array(row.payload.buffer, row.payload.byteOffset, row.payload.byteLength),
    ) as [string, unknown[]];
    return { id: row.id, message: { target, arguments: args } };
  });
}

/** Sets the confirming connection unless another came first; returns the one that counts. */
export async function confirmNotification(
  query: Query,
  n: SchemaNames,
  hub: string,
  id: string,
  connectionId: string,
): Promise<string | undefined> {
  const result = await query<{ confirmed_by: string }>(
    `UPDATE ${n.pendingNotifications}
     SET confirmed_by = COALESCE(confirmed_by, $3), confirmed_at = COALESCE(confirmed_at, now())
     WHERE hub = $1 AND id = $2
     RETURNING confirmed_by`,
    [hub, id, connectionId],
    `${n.statementPrefix}pending_confirm`,
  );
  return result.rows[0]?.confirmed_by;
}

export async function notificationConfirmation(
  query: Query,
  n: SchemaNames,
  hub: string,
  id: string,
): Promise<NotificationConfirmation> {
  const result = await query<{ confirmed_by: string | null; expired: boolean }>(
    `SELECT confirmed_by, expires_at <= now() AS expired FROM ${n.pendingNotifications}
     WHERE hub = $1 AND id = $2`,
    [hub, id],
    `${n.statementPrefix}pending_state`,
  );
  const row = result.rows[0];
  if (row === undefined) return { state: "unknown" };
  if (row.confirmed_by !== null) return { state: "confirmed", connectionId: row.confirmed_by };
  return row.expired ? { state: "unknown" } : { state: "pending" };
}

/** Deletes up to `batchSize` expired notifications, and confirmed ones after a while; returns how many. */
export async function trimPendingNotifications(
  query: Query,
  n: SchemaNames,
  batchSize: number,
): Promise<number> {
  const result = await query(
    `DELETE FROM ${n.pendingNotifications}
     WHERE id IN (SELECT id FROM ${n.pendingNotifications}
                  WHERE expires_at <= now() OR confirmed_at <= now() - ${CONFIRMED_KEPT}
                  LIMIT $1 FOR UPDATE SKIP LOCKED)`,
    [batchSize],
    `${n.statementPrefix}trim_pending`,
  );
  return result.rowCount ?? 0;
}

/** The notifications kept for later in a hub, for the admin page: `limit` of each kind. */
export async function keptNotifications(
  query: Query,
  n: SchemaNames,
  hub: string,
  limit: number,
): Promise<KeptNotifications> {
  const stored = await query<{ key: string; payload: Buffer; expires_at: Date }>(
    `SELECT key, payload, expires_at FROM ${n.storedMessages}
     WHERE hub = $1 AND expires_at > now() ORDER BY id LIMIT $2`,
    [hub, limit],
  );
  const pending = await query<{
    id: string;
    key: string;
    created_at: Date;
    expires_at: Date;
    confirmed_by: string | null;
    confirmed_at: Date | null;
  }>(
    `SELECT id::text AS id, key, created_at, expires_at, confirmed_by, confirmed_at
     FROM ${n.pendingNotifications} WHERE hub = $1 AND expires_at > now()
     ORDER BY created_at DESC, id LIMIT $2`,
    [hub, limit],
  );
  return {
    stored: stored.rows.map((row) => ({
      identifier: row.key,
      method: methodOf(row.payload),
      expiresAt: row.expires_at,
    })),
    pending: pending.rows.map((row) => ({
      id: row.id,
      identifier: row.key,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      ...(row.confirmed_by === null ? {} : { confirmedBy: row.confirmed_by }),
      ...(row.confirmed_at === null ? {} : { confirmedAt: row.confirmed_at }),
    })),
  };
}

/** The method of a kept `[method, arguments]` payload. */
function methodOf(payload: Buffer): string {
  const decoded = decoder.decode(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength));
  return Array.isArray(decoded) && typeof decoded[0] === "string" ? decoded[0] : "?";
}
