// Confirmed notifications across nodes (see confirmed-notifications.case.ts) on PostgreSQL.
import pg from "pg";
import { confirmedNotificationCases } from "./confirmed-notifications.case.js";
import { withClient } from "../support/database.js";
import { postgresBackplane } from "../support/test-backplanes.js";

const backplane = postgresBackplane("sb_confirmed");

confirmedNotificationCases(
  Object.assign(backplane, {
    async confirmations(notificationId: string) {
      const rows = await withClient(backplane.schema.url, (db) =>
        db.query<{ confirmed_by: string | null }>(
          `SELECT confirmed_by FROM ${pg.escapeIdentifier(backplane.schema.schema)}.pending_notifications WHERE id = $1`,
          [notificationId],
        ),
      );
      return rows.rows.map((row) => row.confirmed_by);
    },
  }),
);
