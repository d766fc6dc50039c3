/** The registry refuses to let one node take over a connection id that is live on another. */
import { backplaneNodes } from "../../../test/support/backplane-nodes.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestSchema, type TestSchema } from "../../../test/support/database.js";
import type { PostgresBackplane } from "./postgres-backplane.js";

let db: TestSchema;
const started = backplaneNodes(() => ({ connectionString: db.url, schema: db.schema }));
const nodes: PostgresBackplane[] = [];

beforeAll(async () => {
  db = await createTestSchema();
  for (let i = 0; i < 2; i++) nodes.push((await started.start()).backplane);
});
afterAll(async () => {
  await started.closeAll();
  await db.drop();
});

it("a connection id live on one node cannot be registered by another (a replayed token)", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  await a.addConnection({ connectionId: "c1", hub: "/chat", userId: "ann" });
  await expect(b.addConnection({ connectionId: "c1", hub: "/chat", userId: "mallory" })).rejects.toThrow(
    "Connection 'c1' is already connected on another node.",
  );
  expect(await a.userConnections("/chat", "ann")).toMatchObject([{ connectionId: "c1", nodeId: a.nodeId }]);
  expect(await a.userConnections("/chat", "mallory")).toEqual([]);
});

it("a burst of connects and disconnects is written in a few statements, each connection settled on its own", async () => {
  const [a, b] = nodes as [PostgresBackplane, PostgresBackplane];
  await a.addConnection({ connectionId: "taken", hub: "/burst", userId: "" });
  const before = b.stats().statements;
  const ids = Array.from({ length: 300 }, (_, i) => `b${i}`);
  const outcomes = await Promise.allSettled(
    [...ids, "taken"].map((connectionId) =>
      b.addConnection({ connectionId, hub: "/burst", userId: connectionId }),
    ),
  );
  // The connection live on the other node is refused; the 300 in the same statements are registered.
  expect(outcomes.filter((o) => o.status === "rejected").map((o) => String(o.reason))).toEqual([
    "ConnectionTakenError: Connection 'taken' is already connected on another node.",
  ]);
  expect((await a.nodes()).find((n) => n.nodeId === b.nodeId)?.connectionCount).toBe(300);
  await Promise.all(ids.map((id) => b.removeConnection("/burst", id)));
  expect((await a.nodes()).find((n) => n.nodeId === b.nodeId)?.connectionCount).toBe(0);
  // Three presence queries above; the 301 registrations and 300 removals took a handful of statements.
  expect(b.stats().statements - before).toBeLessThan(20);
});
