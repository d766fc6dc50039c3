/**
 * Named statements keep the text of their first use: the same string goes to pg every time, so its
 * check of the prepared text is an identity comparison, and a name reused for another text is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getTestDatabaseUrl } from "../../../test/support/database.js";
import { appendSql } from "./log.js";
import { SchemaNames } from "./names.js";
import { createPool, emptyStats, Sql } from "./sql.js";

describe("named statements", () => {
  let sql: Sql;

  beforeAll(async () => {
    const pool = createPool({
      connectionString: await getTestDatabaseUrl(),
      poolSize: 2,
      statementTimeoutMs: 10_000,
      applicationName: "switchboard sql test",
      onError: () => {},
    });
    sql = new Sql(pool, emptyStats());
  });
  afterAll(() => sql.pool.end());

  it("run with a text built anew per call, as callers build it", async () => {
    for (let i = 0; i < 3; i++) {
      const result = await sql.query<{ n: number }>(`SELECT $1::int + ${1} AS n`, [i], "sb_test_add_one");
      expect(result.rows[0]!.n).toBe(i + 1);
    }
  });

  it("refuse a name reused for a different text, naming the statement", async () => {
    await sql.query("SELECT 1 AS n", [], "sb_test_reused");
    await expect(sql.query("SELECT 22 AS n", [], "sb_test_reused")).rejects.toThrow(
      "The statement 'sb_test_reused' was prepared with a different text.",
    );
  });
});

describe("statement texts built from schema names", () => {
  it("are the builder's text for their own schema", () => {
    const names = new SchemaNames("switchboard");
    expect(names.text(appendSql)).toBe(appendSql(names));
    expect(names.text(appendSql)).toBe(names.text(appendSql));
    expect(new SchemaNames("other").text(appendSql)).not.toBe(names.text(appendSql));
  });
});
