// Faults with numbered sends: three real nodes on a PostgreSQL of the suite's own, users' official clients
// behind the round-robin balancer, plain senders on the nodes. Each fault ends in exact counts of what
// was confirmed, delivered, lost, duplicated and reordered, and of sends that reported "no connection"
// while their user was connected. What each fault measured is written to test-output/faults.json.
import { mkdir, writeFile } from "node:fs/promises";
import { HttpTransportType, HubConnectionBuilder, LogLevel, type HubConnection } from "@microsoft/signalr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectUser,
  FaultCluster,
  Ledger,
  sleep,
  until,
  type FaultNode,
  type Tally,
  type User,
} from "./fault-cluster.js";

const NODE_TIMEOUT_MS = 3000;
const USERS = 60;

let cluster: FaultCluster;
let users: User[] = [];
let senders: HubConnection[] = [];
const measured: Record<string, unknown> = {};

async function connectSenders(): Promise<HubConnection[]> {
  await Promise.all(senders.map((s) => s.stop().catch(() => undefined)));
  senders = await Promise.all(
    cluster.live().map(async (node) => {
      const sender = new HubConnectionBuilder()
        .withUrl(`${node.process.url}/hub?user=sender`, { transport: HttpTransportType.WebSockets })
        .configureLogging(LogLevel.None)
        .build();
      await sender.start();
      return sender;
    }),
  );
  return senders;
}

/** Every user connected, and every node registered, before a fault starts. */
async function settled(): Promise<void> {
  await until(() => users.every((u) => u.connected()), "every user connected", 60_000);
  await until(
    async () => (await cluster.registeredNodes()).length === cluster.live().length,
    "every node registered",
  );
}

/**
 * Runs numbered sends before, during and after `fault`, then waits for the confirmed ones to arrive.
 * Returns the ledger (for filters of the fault's own) and the tally of every send.
 */
async function underLoad(fault: () => Promise<void>): Promise<{ ledger: Ledger; tally: Tally }> {
  await settled();
  for (const user of users) user.received.length = 0;
  const ledger = new Ledger(users, await connectSenders());
  ledger.start(4);
  await sleep(800);
  await fault();
  await sleep(1500);
  await ledger.stop();
  // Confirmed sends still on their way arrive within moments; a lost one never does.
  await until(() => ledger.tally().lost === 0, "every confirmed send to arrive", 8000).catch(() => undefined);
  return { ledger, tally: ledger.tally() };
}

function record(name: string, values: Record<string, unknown>): void {
  measured[name] = values;
  if (process.env.TEST_LOG) console.log(name, values);
}

beforeAll(async () => {
  cluster = await FaultCluster.start({ nodes: 3, nodeTimeoutMs: NODE_TIMEOUT_MS });
  users = [];
  for (let i = 0; i < USERS; i++) users.push(await connectUser(cluster.balancer.url, `u${i}`));
  // Judging others by their liveness locks starts once a node's own lock has been held for the timeout.
  await sleep(NODE_TIMEOUT_MS + 500);
}, 120_000);

afterAll(async () => {
  await cluster?.stop(); // the nodes first: nothing of the suite may outlive it, whatever else fails
  await Promise.all(
    [...users, ...senders.map((connection) => ({ connection }))].map((u) =>
      u.connection.stop().catch(() => undefined),
    ),
  );
  await mkdir("test-output", { recursive: true });
  await writeFile("test-output/faults.json", JSON.stringify(measured, null, 2));
}, 60_000);

const nobodySwept = (nodes: FaultNode[]) =>
  nodes.flatMap((n) => n.events).filter((e) => e.event === "NodeSwept" || e.event === "DeadNodeSwept");

describe("faults of the database", () => {
  it("a restart of PostgreSQL loses, repeats and reorders nothing, and never reports a send to nobody", async () => {
    const { tally } = await underLoad(async () => {
      await cluster.stopDatabase();
      await sleep(500);
      await cluster.startDatabase();
    });
    record("database restarted", { ...tally });
    expect(tally.failed).toBeGreaterThan(0); // the outage was real: sends were refused meanwhile
    expect(tally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, zero: 0 });
    expect(nobodySwept(cluster.nodes)).toEqual([]);
  });

  it("PostgreSQL down for longer than the node timeout: no healthy node is swept, no send reaches nobody", async () => {
    const before = await cluster.registeredNodes();
    const { tally } = await underLoad(async () => {
      await cluster.stopDatabase();
      await sleep(NODE_TIMEOUT_MS + 1500);
      await cluster.startDatabase();
      await sleep(NODE_TIMEOUT_MS); // past the time a node that lost its heartbeats would be swept
    });
    record("database down past the node timeout", { ...tally, downMs: NODE_TIMEOUT_MS + 1500 });
    expect(tally.failed).toBeGreaterThan(0);
    expect(tally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, zero: 0 });
    expect(nobodySwept(cluster.nodes)).toEqual([]);
    expect((await cluster.registeredNodes()).sort()).toEqual(before.sort());
  });

  it("every backend terminated at once: nothing lost, repeated, reordered or sent to nobody", async () => {
    let terminated = 0;
    const { tally } = await underLoad(async () => {
      terminated = await cluster.terminateBackends();
    });
    record("every backend terminated", { ...tally, terminated });
    expect(terminated).toBeGreaterThanOrEqual(9); // three nodes: pool, heartbeat and LISTEN sessions each
    expect(tally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0, zero: 0 });
    expect(nobodySwept(cluster.nodes)).toEqual([]);
  });
});

describe("faults of a node", () => {
  it("a node frozen past the node timeout (SIGSTOP) is swept, and from the moment it registers again no send misses its users", async () => {
    const frozen = cluster.live()[1]!;
    let continuedAt = 0;
    const { ledger, tally } = await underLoad(async () => {
      cluster.pause(frozen);
      await sleep(NODE_TIMEOUT_MS + 2000);
      continuedAt = Date.now();
      cluster.resume(frozen);
      await until(
        () => frozen.events.some((e) => e.event === "NodeReregistered"),
        "the frozen node to register again",
      );
    });
    const reregisteredAt = frozen.events.find((e) => e.event === "NodeReregistered")!.at;
    const afterwards = ledger.tally((r) => r.issuedAt >= reregisteredAt);
    record("node frozen past the timeout", {
      ...tally,
      sendsReportingNobodyDuringTheFreeze: tally.zero,
      continuedToRegisteredMs: reregisteredAt - continuedAt,
      afterRegisteredAgain: afterwards,
    });
    // It was swept (by a live node, for its silence), and came back on its own.
    expect(cluster.nodes.flatMap((n) => n.events).some((e) => e.event === "NodeSwept")).toBe(true);
    expect(tally).toMatchObject({ lost: 0, duplicated: 0, reordered: 0 });
    expect(afterwards.zero).toBe(0);
    expect(afterwards.sent).toBeGreaterThan(0);
  });

  it("a node killed with SIGKILL is known dead by its ended session, and no send confirmed after that is lost", async () => {
    const victim = cluster.live()[2]!;
    const victimId = victim.process.nodeId;
    let killedAt = 0;
    let knownDeadAt = 0;
    const { ledger, tally } = await underLoad(async () => {
      killedAt = Date.now();
      await cluster.kill(victim);
      await until(
        async () => !(await cluster.registeredNodes()).includes(victimId),
        "the dead node to be swept",
      );
      knownDeadAt = Date.now();
      await until(() => users.every((u) => u.connected()), "every user back", 30_000);
    });
    const afterDeath = ledger.tally((r) => r.issuedAt >= knownDeadAt);
    const window = ledger.tally((r) => r.issuedAt >= killedAt && r.issuedAt < knownDeadAt);
    record("node killed", {
      ...tally,
      knownDeadAfterMs: knownDeadAt - killedAt,
      lostBeforeKnownDead: window.lost,
      afterKnownDead: afterDeath,
    });
    // Swept because its session ended, not at the heartbeat timeout.
    expect(cluster.nodes.flatMap((n) => n.events).some((e) => e.event === "DeadNodeSwept")).toBe(true);
    expect(afterDeath.lost).toBe(0);
    expect(tally).toMatchObject({ duplicated: 0, reordered: 0 });
    await cluster.addNode();
  });

  it("a node holding 1,000 clients killed: every client comes back, and no send confirmed after its death is lost", async () => {
    const target = cluster.live()[0]!;
    cluster.balance([target]); // the bulk connects to this node alone
    const bulk: User[] = [];
    try {
      for (let i = 0; i < 1000; i += 50) {
        bulk.push(
          ...(await Promise.all(
            Array.from({ length: 50 }, (_, j) => connectUser(cluster.balancer.url, `b${i + j}`)),
          )),
        );
      }
    } finally {
      cluster.balance();
    }
    const everyone = [...users, ...bulk];
    const targetId = target.process.nodeId;
    let killedAt = 0;
    let knownDeadAt = 0;
    let allBackAt = 0;
    await settled();
    for (const user of everyone) user.received.length = 0;
    const ledger = new Ledger(everyone, await connectSenders());
    ledger.start(8);
    await sleep(800);
    killedAt = Date.now();
    await cluster.kill(target);
    await until(
      async () => !(await cluster.registeredNodes()).includes(targetId),
      "the dead node to be swept",
    );
    knownDeadAt = Date.now();
    await until(() => bulk.every((u) => u.connected()), "the 1,000 clients back", 60_000);
    allBackAt = Date.now();
    await sleep(1000);
    await ledger.stop();
    await until(() => ledger.tally().lost === 0, "confirmed sends to arrive", 8000).catch(() => undefined);
    const afterDeath = ledger.tally((r) => r.issuedAt >= knownDeadAt);
    const window = ledger.tally((r) => r.issuedAt >= killedAt && r.issuedAt < knownDeadAt);
    record("node with 1,000 clients killed", {
      ...ledger.tally(),
      knownDeadAfterMs: knownDeadAt - killedAt,
      allBackAfterMs: allBackAt - killedAt,
      lostBeforeKnownDead: window.lost,
      afterKnownDead: afterDeath,
    });
    await Promise.all(bulk.map((u) => u.connection.stop().catch(() => undefined)));
    expect(afterDeath.lost).toBe(0);
    expect(ledger.tally()).toMatchObject({ duplicated: 0, reordered: 0 });
  }, 120_000);
});
