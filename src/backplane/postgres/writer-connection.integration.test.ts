/**
 * The log writer's own connection: opened on the first statement, opened again after a loss, given up
 * when a statement goes unanswered, and closed for good with the writer.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { getTestDatabaseUrl, waitFor, withClient } from "../../../test/support/database.js";
import { emptyStats } from "./sql.js";
import { WriterConnection } from "./writer-connection.js";

const APPLICATION = "switchboard writer connection test";
let url: string;
const opened: WriterConnection[] = [];

function connection(errors: unknown[] = []): WriterConnection {
  const stats = emptyStats();
  const made = new WriterConnection(
    { connectionString: url, statementTimeoutMs: 10_000, applicationName: APPLICATION },
    stats,
    (err) => errors.push(err),
  );
  opened.push(made);
  return made;
}

async function backendPid(writer: WriterConnection): Promise<number> {
  return (await writer.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
}

beforeAll(async () => {
  url = await getTestDatabaseUrl();
});
afterEach(async () => {
  await Promise.all(opened.splice(0).map((c) => c.close()));
});

describe("the log writer's connection", () => {
  it("keeps one session for its statements, named ones prepared once", async () => {
    const writer = connection();
    const pid = await backendPid(writer);
    for (let i = 0; i < 3; i++) {
      const result = await writer.query<{ n: number }>("SELECT $1::int + 1 AS n", [i], "sb_test_writer_add");
      expect(result.rows[0]!.n).toBe(i + 1);
    }
    expect(await backendPid(writer)).toBe(pid);
  });

  it("opens a new session after its backend is terminated, and reports the loss", async () => {
    const errors: unknown[] = [];
    const writer = connection(errors);
    const pid = await backendPid(writer);
    await withClient(url, (client) => client.query("SELECT pg_terminate_backend($1)", [pid]));
    // The statement that meets the closed session fails; the one after it runs on a new session.
    await writer.query("SELECT 1").catch(() => {});
    expect(await backendPid(writer)).not.toBe(pid);
    expect(errors.length).toBeGreaterThan(0);
  });

  it("gives up a statement that goes unanswered at once, and runs the next on a new session", async () => {
    const writer = connection();
    const pid = await backendPid(writer);
    const sleeping = writer.query("SELECT pg_sleep(30)");
    await new Promise((resolve) => setTimeout(resolve, 100));
    const startedAt = Date.now();
    writer.abandon();
    await expect(sleeping).rejects.toThrow();
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect(await backendPid(writer)).not.toBe(pid);
  });

  it("refuses statements once closed, and ends its session", async () => {
    const writer = connection();
    const pid = await backendPid(writer);
    await writer.close();
    await expect(writer.query("SELECT 1")).rejects.toThrow("The log writer's connection is closed.");
    await waitFor(
      async () =>
        (
          await withClient(url, (client) =>
            client.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]),
          )
        ).rowCount === 0,
      "the closed connection's backend to end",
    );
  });
});
