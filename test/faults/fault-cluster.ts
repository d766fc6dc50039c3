// The fault suite's cluster: a PostgreSQL of its own (so it may stop, start and cut it), real node
// processes behind the round-robin balancer, official clients for many users, and a ledger that counts
// every numbered send and every arrival, so each fault ends in exact numbers, not in hope.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  HttpTransportType,
  HubConnectionBuilder,
  HubConnectionState,
  LogLevel,
  type HubConnection,
} from "@microsoft/signalr";
import pg from "pg";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/backplane/postgres/embedded.js";
import { startLoadBalancer, type LoadBalancer } from "../../src/cli/load-balancer.js";
import { spawnNode, type NodeProcess } from "../../src/cli/node-process.js";

/** A node process and every log line it wrote. */
export interface FaultNode {
  process: NodeProcess;
  lines: string[];
  /** The events (`event` fields) it logged, with when the test process saw them. */
  events: { event: string; at: number; fields: Record<string, unknown> }[];
}

export interface FaultClusterOptions {
  nodes: number;
  /** `--node-timeout`: short, so the faults that wait for it stay short. */
  nodeTimeoutMs: number;
}

export class FaultCluster {
  readonly nodes: FaultNode[] = [];
  private constructor(
    private readonly database: { server: EmbeddedPostgres; dataDir: string; port: number },
    readonly balancer: LoadBalancer,
    private readonly options: FaultClusterOptions,
  ) {}

  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const dataDir = await mkdtemp(join(tmpdir(), "switchboard-faults-pg-"));
    const server = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
    const balancer = await startLoadBalancer([]);
    const cluster = new FaultCluster({ server, dataDir, port: server.port }, balancer, options);
    for (let i = 0; i < options.nodes; i++) await cluster.addNode();
    return cluster;
  }

  get databaseUrl(): string {
    return this.database.server.url;
  }

  /** Starts one more node and puts it behind the balancer. */
  async addNode(): Promise<FaultNode> {
    const node: FaultNode = { process: undefined as unknown as NodeProcess, lines: [], events: [] };
    node.process = await spawnNode(
      [
        "--database-url",
        this.database.server.url,
        "--hubs",
        "test/hubs/cluster-hubs.ts",
        "--node-timeout",
        String(this.options.nodeTimeoutMs),
        "--log-level",
        process.env.TEST_LOG ? "debug" : "info",
      ],
      (line) => {
        node.lines.push(line);
        if (process.env.TEST_LOG) console.log(`[node ${this.nodes.indexOf(node)}] ${line}`);
        try {
          const fields = JSON.parse(line) as Record<string, unknown>;
          if (typeof fields.event === "string")
            node.events.push({ event: fields.event, at: Date.now(), fields });
        } catch {
          // not a JSON line
        }
      },
      { execArgv: ["--import", "tsx"] },
    );
    this.nodes.push(node);
    this.balance();
    return node;
  }

  /** The nodes whose process runs (and is not stopped), behind the balancer. */
  live(): FaultNode[] {
    return this.nodes.filter((n) => n.process.child.exitCode === null && n.process.child.signalCode === null);
  }

  /** Points the balancer at these nodes only (all live ones by default). */
  balance(nodes: FaultNode[] = this.live()): void {
    this.balancer.setBackends(nodes.map((n) => n.process.url));
  }

  async kill(node: FaultNode): Promise<void> {
    this.balance(this.live().filter((n) => n !== node));
    await node.process.kill();
  }

  pause(node: FaultNode): void {
    node.process.child.kill("SIGSTOP");
  }

  resume(node: FaultNode): void {
    node.process.child.kill("SIGCONT");
  }

  async stopDatabase(): Promise<void> {
    await this.database.server.stop();
  }

  async startDatabase(): Promise<void> {
    this.database.server = await startEmbeddedPostgres({
      dataDir: this.database.dataDir,
      port: this.database.port,
      unsafeFast: true,
    });
  }

  /** Ends every database session but the one asking (as a failover or an operator would). */
  async terminateBackends(): Promise<number> {
    return this.query(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    ).then((rows) => rows[0]!.n as number);
  }

  /** The ids of the nodes registered now. */
  async registeredNodes(): Promise<string[]> {
    const rows = await this.query(`SELECT id::text AS id FROM switchboard.nodes`);
    return rows.map((r) => r.id as string);
  }

  async query(text: string): Promise<Record<string, unknown>[]> {
    const client = new pg.Client({ connectionString: this.database.server.url });
    client.on("error", () => {});
    await client.connect();
    try {
      return (await client.query(text)).rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** Kills every node first (nothing of the suite may outlive it), then the balancer and the database. */
  async stop(): Promise<void> {
    for (const node of this.nodes) {
      if (node.process.child.signalCode === "SIGSTOP") node.process.child.kill("SIGCONT");
    }
    await Promise.all(this.nodes.map((n) => n.process.kill()));
    await this.balancer.close();
    await this.database.server.stop().catch(() => {});
    await rm(this.database.dataDir, { recursive: true, force: true });
  }
}

/** One user's official client, connected through the balancer and reconnecting for as long as it takes. */
export interface User {
  name: string;
  connection: HubConnection;
  /** The numbers it received, in arrival order. */
  received: number[];
  connected(): boolean;
}

export async function connectUser(balancerUrl: string, name: string): Promise<User> {
  const connection = new HubConnectionBuilder()
    .withUrl(`${balancerUrl}/hub?user=${name}`, { transport: HttpTransportType.WebSockets })
    .withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (c) => (c.elapsedMilliseconds < 120_000 ? 100 : null),
    })
    .configureLogging(LogLevel.None)
    .build();
  const user: User = {
    name,
    connection,
    received: [],
    connected: () => connection.state === HubConnectionState.Connected,
  };
  connection.on("msg", (n: number) => user.received.push(n));
  for (let attempt = 1; ; attempt++) {
    try {
      await connection.start();
      return user;
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Where a send ended. */
type Outcome = "confirmed" | "zero" | "failed";

interface SendRecord {
  user: User;
  seq: number;
  /** Which sender sent it: order is promised per sender. */
  sender: HubConnection;
  issuedAt: number;
  settledAt: number;
  outcome: Outcome;
  /** The user's client was connected when the send was issued and when it settled. */
  reachable: boolean;
}

/** What a fault did to the sends, counted exactly. */
export interface Tally {
  sent: number;
  confirmed: number;
  /** Resolved with `connections: 0`. */
  zero: number;
  /** ...while the user's client was connected both when the send was issued and when it settled. */
  zeroWhileConnected: number;
  /** Rejected (the backplane or the node was unavailable): the sender knows it did not go out. */
  failed: number;
  delivered: number;
  /** Confirmed (a connection counted) yet never arrived. */
  lost: number;
  duplicated: number;
  reordered: number;
}

/**
 * Numbered sends from plain official clients, one per sending node, to every user: each user's numbers go
 * out one at a time from the same sender while it lives (order is promised per sender, not across
 * senders), and every outcome is recorded.
 */
export class Ledger {
  private readonly records: SendRecord[] = [];
  private readonly next = new Map<User, number>();
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly users: User[],
    private senders: HubConnection[],
  ) {}

  /** Replaces the sending connections (a sender's node died). */
  useSenders(senders: HubConnection[]): void {
    this.senders = senders;
  }

  /** Starts `loops` send loops, each over its share of the users, each send awaited. */
  start(loops: number): void {
    this.running = true;
    for (let l = 0; l < loops; l++) {
      const mine = this.users.filter((_, i) => i % loops === l);
      this.loops.push(this.loop(mine, l));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops.splice(0));
  }

  private async loop(users: User[], offset: number): Promise<void> {
    const assigned = new Map<User, HubConnection>();
    while (this.running) {
      for (const [i, user] of users.entries()) {
        if (!this.running) return;
        let sender = assigned.get(user);
        if (sender?.state !== HubConnectionState.Connected) {
          const senders = this.senders.filter((s) => s.state === HubConnectionState.Connected);
          sender = senders[(offset + i) % Math.max(1, senders.length)];
          if (!sender) {
            await new Promise((resolve) => setTimeout(resolve, 20));
            continue;
          }
          assigned.set(user, sender);
        }
        await this.send(sender, user);
      }
    }
  }

  private async send(sender: HubConnection, user: User): Promise<void> {
    const seq = (this.next.get(user) ?? 0) + 1;
    this.next.set(user, seq);
    const connectedAtIssue = user.connected();
    const issuedAt = Date.now();
    let outcome: Outcome;
    try {
      const result = await sender.invoke<{ connections: number }>("ToUser", user.name, seq);
      outcome = result.connections > 0 ? "confirmed" : "zero";
    } catch {
      outcome = "failed";
    }
    this.records.push({
      user,
      seq,
      sender,
      issuedAt,
      settledAt: Date.now(),
      outcome,
      reachable: connectedAtIssue && user.connected(),
    });
  }

  /** Counts the sends that `include` selects (all by default); arrivals are checked per user. */
  tally(include: (record: SendRecord) => boolean = () => true): Tally {
    const chosen = this.records.filter(include);
    const tally: Tally = {
      sent: chosen.length,
      confirmed: 0,
      zero: 0,
      zeroWhileConnected: 0,
      failed: 0,
      delivered: 0,
      lost: 0,
      duplicated: 0,
      reordered: 0,
    };
    const arrivals = new Map<User, Map<number, number>>();
    for (const user of this.users) {
      const counts = new Map<number, number>();
      for (const n of user.received) counts.set(n, (counts.get(n) ?? 0) + 1);
      arrivals.set(user, counts);
    }
    for (const record of chosen) {
      if (record.outcome === "confirmed") tally.confirmed++;
      if (record.outcome === "failed") tally.failed++;
      if (record.outcome === "zero") {
        tally.zero++;
        if (record.reachable) tally.zeroWhileConnected++;
      }
      const times = arrivals.get(record.user)!.get(record.seq) ?? 0;
      if (times > 0) tally.delivered++;
      if (times > 1) tally.duplicated++;
      if (times === 0 && record.outcome === "confirmed") tally.lost++;
    }
    // Reordered: a number that arrived after a higher one from the same sender.
    const senderOf = new Map<User, Map<number, HubConnection>>();
    for (const record of this.records) {
      let bySeq = senderOf.get(record.user);
      if (!bySeq) senderOf.set(record.user, (bySeq = new Map()));
      bySeq.set(record.seq, record.sender);
    }
    for (const user of this.users) {
      const highest = new Map<HubConnection | undefined, number>();
      for (const n of user.received) {
        const sender = senderOf.get(user)?.get(n);
        if (n < (highest.get(sender) ?? 0)) tally.reordered++;
        highest.set(sender, Math.max(highest.get(sender) ?? 0, n));
      }
    }
    return tally;
  }

  /** The send records (for the fault's own filters). */
  get all(): readonly SendRecord[] {
    return this.records;
  }
}

/** Waits until `condition` holds, checking every 20 ms, for at most `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
