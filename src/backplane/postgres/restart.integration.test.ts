/**
 * A database restart under load, on a PostgreSQL of this test's own (it is stopped and started again):
 * every send the database confirmed reaches the other node exactly once and in order; while it is down,
 * sends fail with BackplaneUnavailableError, the node reports itself degraded, and recipients on the
 * sending node still get its sends.
 */
import { backplaneNodes } from "../../../test/support/backplane-nodes.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { waitFor } from "../../../test/support/database.js";
import { BackplaneUnavailableError, type SendTarget } from "../backplane.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "./embedded.js";

const HUB = "/chat";
let dataDir: string;
let database: EmbeddedPostgres;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "switchboard-restart-"));
  database = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
}, 60_000);

afterAll(async () => {
  await nodes.closeAll();
  await database.stop();
  await rm(dataDir, { recursive: true, force: true });
});

const nodes = backplaneNodes(() => ({
  connectionString: database.url,
  publishTimeoutMs: 2000,
  pollIntervalMs: 50,
  // Longer than the outage: neither node is swept while the database is away.
  nodeTimeoutMs: 30_000,
  heartbeatIntervalMs: 1000,
}));
const node = () => nodes.start();

it("a restart of the database loses and repeats nothing that was committed", async () => {
  const sender = await node();
  const receiver = await node();
  await sender.backplane.addConnection({ connectionId: "local", hub: HUB, userId: "" });
  await receiver.backplane.addConnection({ connectionId: "remote", hub: HUB, userId: "" });
  const target: SendTarget = { kind: "connections", hub: HUB, connectionIds: ["local", "remote"] };

  const confirmed: number[] = [];
  const refused: number[] = [];
  let next = 1;
  const send = async (): Promise<void> => {
    const n = next++;
    try {
      await sender.backplane.publish(target, { target: "seq", arguments: [n] });
      confirmed.push(n);
    } catch (err) {
      expect(err).toBeInstanceOf(BackplaneUnavailableError);
      refused.push(n);
    }
  };
  // Traffic keeps flowing, a few sends at a time, until told to stop.
  let flowing = true;
  const traffic = (async () => {
    for (let round = 0; flowing && round < 100_000; round++) {
      await Promise.all([send(), send(), send()]);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();

  await waitFor(() => confirmed.length >= 200, "traffic before the restart");
  await database.stop();
  await waitFor(() => refused.length >= 10, "sends to fail while the database is down");
  await waitFor(() => sender.backplane.health().status === "degraded", "the node to report itself degraded");
  const localBefore = sender.recorder.values("local").length;
  await waitFor(
    () => sender.recorder.values("local").length > localBefore + 5,
    "local delivery during the outage",
  );

  database = await startEmbeddedPostgres({ dataDir, port: database.port, unsafeFast: true });
  const confirmedAtRestart = confirmed.length;
  await waitFor(() => confirmed.length >= confirmedAtRestart + 200, "traffic after the restart", 30_000);
  flowing = false;
  await traffic;
  await waitFor(() => sender.backplane.health().status === "ok", "the node to recover");

  // Everything the database confirmed arrives at the other node, once, in order. A send refused for an
  // unknown outcome (the connection dropped during its commit) may have been written: allowed, once.
  const last = confirmed[confirmed.length - 1]!;
  await waitFor(() => receiver.recorder.values("remote").includes(last), "the last confirmed send", 30_000);
  const received = receiver.recorder.values("remote") as number[];
  expect(new Set(received).size).toBe(received.length);
  expect([...received].sort((a, b) => a - b)).toEqual(received);
  expect(received.filter((n) => confirmed.includes(n))).toEqual([...confirmed].sort((a, b) => a - b));
  expect(received.every((n) => confirmed.includes(n) || refused.includes(n))).toBe(true);
  // The sending node's own connection got every send, refused or not, in order.
  expect(sender.recorder.values("local")).toEqual(Array.from({ length: next - 1 }, (_, i) => i + 1));
}, 120_000);
