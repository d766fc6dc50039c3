/**
 * vitest globalSetup: provides the test database URL to every test file (`inject("switchboardDatabaseUrl")`,
 * or `getTestDatabaseUrl()` from database.ts). Uses SWITCHBOARD_TEST_DATABASE_URL when set; otherwise starts
 * an embedded PostgreSQL in a temporary directory on a free port and removes it at teardown.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/backplane/postgres/embedded.js";

// Not imported from database.ts: that module imports "vitest", which must not load in globalSetup.
const DATABASE_URL_KEY = "switchboardDatabaseUrl";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.SWITCHBOARD_TEST_DATABASE_URL;
  if (configured) {
    project.provide(DATABASE_URL_KEY, configured);
    return async () => {};
  }
  const dataDir = await mkdtemp(join(tmpdir(), "switchboard-test-pg-"));
  const server = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
  project.provide(DATABASE_URL_KEY, server.url);
  return async () => {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
