/**
 * The pool's statements: named ones keep the text of their first use (the same string goes to pg every
 * time, so its check of the prepared text is an identity comparison, and a name reused for another text
 * is refused), and one left unanswered by a silent network fails instead of waiting for TCP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCutProxy } from "../../../test/support/cut-proxy.js";
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

describe("a statement on a connection that went silent", () => {
  it("fails once the connection has been out longer than the statement timeout and 5 s, and is reported", async () => {
    const database = new URL(await getTestDatabaseUrl());
    const proxy = await startCutProxy(`http://${database.hostname}:${database.port || 5432}`);
    const viaProxy = new URL(database);
    viaProxy.host = new URL(proxy.url).host;
    const errors: unknown[] = [];
    const pool = createPool({
      connectionString: viaProxy.toString(),
      poolSize: 1,
      statementTimeoutMs: 200,
      applicationName: "switchboard sql test, silent network",
      onError: (err) => errors.push(err),
    });
    const silent = new Sql(pool, emptyStats());
    try {
      await silent.query("SELECT 1");
      expect(proxy.silenceAll()).toBe(1);
      // The server's statement_timeout cannot answer: nothing reaches the server, nothing comes back.
      await expect(silent.query("SELECT 2")).rejects.toThrow();
      expect(String(errors[0])).toContain("went unanswered");
      // The next statement gets a new connection, which the network carries.
      expect((await silent.query<{ n: number }>("SELECT 3 AS n")).rows[0]!.n).toBe(3);
    } finally {
      await pool.end();
      await proxy.close();
    }
  }, 20_000);
});

describe("statement texts built from schema names", () => {
  it("are the builder's text for their own schema", () => {
    const names = new SchemaNames("switchboard");
    expect(names.text(appendSql)).toBe(appendSql(names));
    expect(new SchemaNames("other").text(appendSql)).not.toBe(names.text(appendSql));
  });
});
