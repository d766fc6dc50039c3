// PostgreSQL backplanes for tests: started with a Recorder as their event handler, silent, and closed together.
import { silentLogger } from "../../src/log.js";
import type { PostgresBackplaneOptions } from "../../src/backplane/postgres/options.js";
import { postgres, type PostgresBackplane } from "../../src/backplane/postgres/postgres-backplane.js";
import { SchemaNames } from "../../src/backplane/postgres/names.js";
import { afterAll, afterEach, beforeAll } from "vitest";
import { createTestSchema, type TestSchema } from "./database.js";
import { Recorder } from "./recorder.js";

export interface TestNode {
  backplane: PostgresBackplane;
  recorder: Recorder;
}

/** `base()` gives the options every node shares (read when a node starts, so it may use beforeAll's values). */
export function backplaneNodes(base: () => PostgresBackplaneOptions) {
  const started: PostgresBackplane[] = [];
  return {
    async start(options: Partial<PostgresBackplaneOptions> = {}): Promise<TestNode> {
      const backplane = postgres({ logger: silentLogger, ...base(), ...options });
      const recorder = new Recorder();
      await backplane.start(recorder);
      started.push(backplane);
      return { backplane, recorder };
    },
    /** Closes every node started so far. */
    closeAll: () => Promise.all(started.splice(0).map((b) => b.close())),
  };
}

/**
 * A test file's own schema (made before its tests, dropped after them) and nodes on it, closed after each
 * test. Call at the top level of the file: it registers the hooks. `db` and `names` are there once the
 * file's tests run.
 */
export function backplaneTestSchema(nodeOptions: Partial<PostgresBackplaneOptions> = {}) {
  let db: TestSchema | undefined;
  let names: SchemaNames | undefined;
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("The test schema exists only while the file's tests run.");
    return value;
  };
  const nodes = backplaneNodes(() => ({
    connectionString: ready(db).url,
    schema: ready(db).schema,
    ...nodeOptions,
  }));
  beforeAll(async () => {
    db = await createTestSchema();
    names = new SchemaNames(db.schema);
  });
  afterEach(() => nodes.closeAll());
  afterAll(() => db?.drop());
  return {
    get db(): TestSchema {
      return ready(db);
    },
    get names(): SchemaNames {
      return ready(names);
    },
    start: nodes.start,
  };
}
