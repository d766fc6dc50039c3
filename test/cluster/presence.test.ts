// Presence across nodes (see presence.case.ts) on PostgreSQL, with the SQL views apps join with.
import pg from "pg";
import { presenceCases } from "./presence.case.js";
import { withClient } from "../support/database.js";
import { postgresBackplane } from "../support/test-backplanes.js";

const backplane = postgresBackplane("sb_presence");

presenceCases(
  Object.assign(backplane, {
    views: (connectionId: string) =>
      withClient(backplane.schema.url, async (db) => {
        const name = pg.escapeIdentifier(backplane.schema.schema);
        const team = await db.query<{ connection_id: string }>(
          `SELECT connection_id FROM ${name}.group_members_online WHERE hub = '/hub' AND group_name = 'team'`,
        );
        const quinn = await db.query<{ connections: number; nodes: number }>(
          `SELECT connections, nodes FROM ${name}.users_online WHERE hub = '/hub' AND user_id = 'quinn'`,
        );
        const connection = await db.query<{ user_id: string | null }>(
          `SELECT user_id FROM ${name}.connections_online WHERE hub = '/hub' AND connection_id = $1`,
          [connectionId],
        );
        return {
          team: team.rows.map((r) => r.connection_id).sort(),
          quinn: quinn.rows,
          connection: connection.rows,
        };
      }),
  }),
);
