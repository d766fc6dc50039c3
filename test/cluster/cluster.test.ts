// The three-node cluster cases (cluster.case.ts) on PostgreSQL.
import pg from "pg";
import { clusterCases } from "./cluster.case.js";
import { createTestSchema, withClient, type TestSchema } from "../support/database.js";

let schema: TestSchema | undefined;

clusterCases({
  async start() {
    schema = await createTestSchema("sb_cluster");
    return { backplaneArgs: ["--database-url", schema.url, "--schema", schema.schema] };
  },
  async registryEntries(nodeId) {
    const table = (name: string) => `${pg.escapeIdentifier(schema!.schema)}.${name}`;
    const count = (sql: string) =>
      withClient(schema!.url, async (db) => Number((await db.query(sql, [nodeId])).rows[0].count));
    return {
      nodes: await count(`SELECT count(*) FROM ${table("nodes")} WHERE id = $1`),
      connections: await count(`SELECT count(*) FROM ${table("connections")} WHERE node_id = $1`),
      groupMembers: await count(`SELECT count(*) FROM ${table("group_members")} WHERE node_id = $1`),
    };
  },
  async stop() {
    await schema?.drop();
  },
});
