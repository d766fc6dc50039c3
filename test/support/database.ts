/**
 * The test database: the PostgreSQL named by SWITCHBOARD_TEST_DATABASE_URL, or the embedded one that
 * global-setup.ts starts for the run. Each test file works in its own schema, so files run in parallel
 * and leave nothing behind.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/** The key under which global-setup.ts provides the database URL. */
export const DATABASE_URL_KEY = "switchboardDatabaseUrl";

declare module "vitest" {
  export interface ProvidedContext {
    switchboardDatabaseUrl: string;
  }
}

/** The URL of the test database (a superuser connection to a database the tests may write to). */
export async function getTestDatabaseUrl(): Promise<string> {
  const url = process.env.SWITCHBOARD_TEST_DATABASE_URL ?? inject(DATABASE_URL_KEY);
  if (!url) {
    throw new Error(
      "No test database: set SWITCHBOARD_TEST_DATABASE_URL, or run through vitest with test/support/global-setup.ts.",
    );
  }
  return url;
}

/** A schema of its own for one test file. */
export interface TestSchema {
  url: string;
  /** A random, unquoted schema name (`sb_test_…`); the backplane creates the schema itself. */
  schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** Picks a fresh schema name; call `drop()` in `afterAll`. */
export async function createTestSchema(prefix = "sb_test"): Promise<TestSchema> {
  const url = await getTestDatabaseUrl();
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  return { url, schema, drop: () => dropSchema(url, schema) };
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  await withClient(url, (client) =>
    client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`),
  );
}

/** Runs `work` on a fresh connection and closes it. */
export async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: "switchboard tests" });
  client.on("error", () => {}); // a test may terminate backends; the awaited query reports it
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Polls `condition` every few milliseconds until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
