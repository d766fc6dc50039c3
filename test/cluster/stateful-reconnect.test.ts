// Stateful reconnect across nodes (stateful-reconnect.case.ts) on PostgreSQL.
import { statefulReconnectCases } from "./stateful-reconnect.case.js";
import { createTestSchema, type TestSchema } from "../support/database.js";

let schema: TestSchema | undefined;

statefulReconnectCases({
  async start() {
    schema = await createTestSchema("sb_stateful");
    return { backplaneArgs: ["--database-url", schema.url, "--schema", schema.schema] };
  },
  async stop() {
    await schema?.drop();
  },
});
