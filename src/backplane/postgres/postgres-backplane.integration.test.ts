import { afterAll, beforeAll } from "vitest";
import { createTestSchema, dropSchema, type TestSchema } from "../../../test/support/database.js";
import { runBackplaneSpec } from "../backplane.case.js";
import { postgres } from "./postgres-backplane.js";

let db: TestSchema;
const schemas: string[] = [];

beforeAll(async () => {
  db = await createTestSchema();
});
afterAll(async () => {
  for (const schema of schemas) await dropSchema(db.url, schema);
  await db.drop();
});

runBackplaneSpec({
  name: "PostgresBackplane",
  // A fresh schema per cluster, so the registry rows and the log of one test never meet another's.
  createCluster: (nodes) => {
    const schema = `${db.schema}_${schemas.length + 1}`;
    schemas.push(schema);
    return Array.from({ length: nodes }, () => postgres({ connectionString: db.url, schema }));
  },
});
