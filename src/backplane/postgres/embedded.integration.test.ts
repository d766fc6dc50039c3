import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { withClient } from "../../../test/support/database.js";
import { startEmbeddedPostgres } from "./embedded.js";

describe("startEmbeddedPostgres", () => {
  it("a second start with the same data directory keeps the data", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "switchboard-embedded-"));
    try {
      const first = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
      try {
        await withClient(first.url, (c) =>
          c.query("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('yes')"),
        );
      } finally {
        await first.stop();
      }
      const second = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
      try {
        expect(second.port).not.toBe(0);
        const { rows } = await withClient(second.url, (c) => c.query("SELECT value FROM kept"));
        expect(rows).toEqual([{ value: "yes" }]);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("refuses a second server on files a running one holds, naming the folder and the way out", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "switchboard-embedded-"));
    try {
      const first = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
      try {
        await expect(startEmbeddedPostgres({ dataDir, unsafeFast: true })).rejects.toThrow(
          new RegExp(
            `^The embedded PostgreSQL in ${dataDir} is already running \\(process \\d+\\): .*--data-dir\\.$`,
          ),
        );
        // The first one is untouched.
        const { rows } = await withClient(first.url, (c) => c.query("SELECT 1 AS one"));
        expect(rows).toEqual([{ one: 1 }]);
      } finally {
        await first.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
