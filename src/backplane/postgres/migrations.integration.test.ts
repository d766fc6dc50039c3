import { afterAll, describe, expect, it } from "vitest";
import { dropSchema, getTestDatabaseUrl, waitFor, withClient } from "../../../test/support/database.js";
import { Recorder } from "../../../test/support/recorder.js";
import { migrate, migrations } from "./migrations.js";
import { SchemaNames } from "./names.js";
import { postgres } from "./postgres-backplane.js";

const schemas: string[] = [];
const fresh = (base: string) => {
  const schema = `${base}_${Math.random().toString(36).slice(2, 10)}`;
  schemas.push(schema);
  return schema;
};

afterAll(async () => {
  const url = await getTestDatabaseUrl();
  for (const schema of schemas) await dropSchema(url, schema);
});

describe("migrations", () => {
  it("several nodes migrating at once apply each step exactly once", async () => {
    const url = await getTestDatabaseUrl();
    const schema = fresh("sb_migrate");
    const runs = await Promise.all(Array.from({ length: 6 }, () => migrate(url, schema)));
    const latest = migrations.map((m) => m.version);
    expect(runs.filter((applied) => applied.length > 0)).toEqual([latest]);
    expect(await migrate(url, schema)).toEqual([]);
    const names = new SchemaNames(schema);
    const rows = await withClient(url, (c) =>
      c.query(`SELECT version FROM ${names.migrations} ORDER BY version`),
    );
    expect(rows.rows.map((r) => r.version)).toEqual(latest);
  });

  it("several nodes starting at once on a new schema all start and share one secret", async () => {
    const url = await getTestDatabaseUrl();
    const schema = fresh("sb_start");
    const nodes = Array.from({ length: 4 }, () => postgres({ connectionString: url, schema }));
    try {
      await Promise.all(nodes.map((n) => n.start(new Recorder())));
      const secrets = await Promise.all(nodes.map((n) => n.clusterSecret()));
      for (const s of secrets) expect(Buffer.from(s).equals(Buffer.from(secrets[0]!))).toBe(true);
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });

  it("any schema name works: identifiers are quoted, values are parameters", async () => {
    const url = await getTestDatabaseUrl();
    const schema = fresh(`Odd "Schema"; DROP TABLE x; --`);
    const sender = postgres({ connectionString: url, schema });
    const receiver = postgres({ connectionString: url, schema });
    const recorder = new Recorder();
    try {
      await sender.start(new Recorder());
      await receiver.start(recorder);
      await receiver.addConnection({ connectionId: "it's", hub: "/h'ub", userId: "o'brien" });
      await sender.addToGroup("/h'ub", "it's", "g'roup");
      await sender.publish(
        { kind: "groups", hub: "/h'ub", groups: ["g'roup"] },
        { target: "m", arguments: ["ok"] },
      );
      await waitFor(() => recorder.values("it's", "/h'ub").length === 1, "delivery");
      const found = await withClient(url, (c) =>
        c.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = $1", [schema]),
      );
      expect(found.rowCount).toBe(1);
    } finally {
      await Promise.all([sender.close(), receiver.close()]);
    }
  });
});
