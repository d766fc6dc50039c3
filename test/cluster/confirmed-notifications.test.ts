// Confirmed notifications across nodes (see confirmed-notifications.case.ts) on PostgreSQL.
import pg from "pg";
import { confirmedNotificationCases } from "./confirmed-notifications.case.js";
import { createTestSchema, withClient, type TestSchema } from "../support/database.js";

let schema: TestSchema | undefined;

confirmedNotificationCases({
  async start() {
    schema = await createTestSchema("sb_confirmed");
    return { backplaneArgs: ["--database-url", schema.url, "--schema", schema.schema] };
  },
  async stop() {
    await schema?.drop();
  },
  async confirmations(notificationId) {
    const rows = await withClient(schema!.url, (db) =>
      db.query<{ confirmed_by: string | null }>(
        `SELECT confirmed_by FROM ${pg.escapeIdentifier(schema!.schema)}.pending_notifications WHERE id = $1`,
        [notificationId],
      ),
    );
    return rows.rows.map((row) => row.confirmed_by);
  },
});
