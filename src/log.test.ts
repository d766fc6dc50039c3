// The event catalogue: every event of every layer has its own id, in its layer's range, and is listed in
// docs/logging.md, so operators can look any of them up.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;

/** Every `*.log.ts` under src/, with the events it declares: [id, name]. */
function catalogue(): { file: string; id: number; name: string }[] {
  const events: { file: string; id: number; name: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith(".log.ts") || path === "src/cli/log.ts") {
        const text = readFileSync(join(root, path), "utf8");
        for (const m of text.matchAll(/emit\(\s*\w+,\s*"\w+",\s*(\d+),\s*"(\w+)"/g))
          events.push({ file: path, id: Number(m[1]), name: m[2]! });
        // The backplane's catalogue declares `at(level, n, name)`: event 400 + n.
        for (const m of text.matchAll(/at\("\w+", (\d+), "(\w+)"\)/g))
          events.push({ file: path, id: 400 + Number(m[1]), name: m[2]! });
      }
    }
  };
  walk("src");
  return events;
}

const ranges: Record<string, [number, number]> = {
  "src/transport/transport.log.ts": [1, 99],
  "src/hub/hub.log.ts": [100, 199],
  "src/api/api.log.ts": [200, 299],
  "src/connections/connections.log.ts": [300, 399],
  "src/backplane/postgres/postgres.log.ts": [400, 499],
  "src/server/server.log.ts": [500, 599],
  "src/cli/log.ts": [600, 699],
  "src/backplane/redis/redis.log.ts": [700, 799],
};

describe("the log event catalogue", () => {
  const events = catalogue();

  it("gives each event one id of its layer's range, used by no other event", () => {
    expect(new Set(events.map((e) => e.file))).toEqual(new Set(Object.keys(ranges)));
    for (const { file, id, name } of events) {
      const [low, high] = ranges[file]!;
      expect(id, `${name} in ${file}`).toBeGreaterThanOrEqual(low);
      expect(id, `${name} in ${file}`).toBeLessThanOrEqual(high);
    }
    const byId = new Map<number, string>();
    for (const { id, name } of events) {
      // One event may be written at two levels (HandedOver: debug, or warn when items were dropped).
      expect(byId.get(id) ?? name, `id ${id}`).toBe(name);
      byId.set(id, name);
    }
  });

  it("lists every event in docs/logging.md", () => {
    const doc = readFileSync(join(root, "docs/logging.md"), "utf8");
    for (const { id, name } of events)
      expect(doc, `${id} ${name}`).toMatch(new RegExp(`\\|\\s*${id}\\s*\\|\\s*\`${name}\`\\s*\\|`));
  });
});
