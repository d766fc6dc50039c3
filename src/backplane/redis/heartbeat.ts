/**
 * This node's heartbeat, and what it finds: every interval the node's score in the node list becomes
 * Redis's clock (so nodes' own clocks never matter) and its entry is refreshed; nodes silent for the node
 * timeout are dead (sends and presence ignore them) and swept by whichever live node takes the lock first.
 * A node whose own entry was gone (swept while paused, or Redis lost its data) registers everything again.
 * The heartbeat also trims the node's inbox to what it has read, and retries failed removals.
 */
import type { LocalConnection, LocalIndex } from "../shared/local-index.js";
import type { GroupChanges } from "./group-changes.js";
import { preciseNow } from "./kept-messages.js";
import type { RedisKeys } from "./keys.js";
import { texts, type RedisLink, type Reply } from "./link.js";
import type { RedisLog } from "./redis.log.js";
import type { Registrations } from "./registrations.js";
import * as registry from "./registry.js";
import { heartbeatScript } from "./scripts.js";

/**
 * How long a swept node's inbox is kept: a process that was only paused (a long GC, a frozen VM) and
 * runs again within it still delivers what was counted for its connections before the sweep.
 */
const SWEPT_INBOX_KEPT_MS = 5 * 60_000;

/** What the heartbeat needs of the node. */
export interface HeartbeatNode {
  readonly nodeId: string;
  /** What the node says of itself in its entry. */
  info(): Record<string, string>;
  /** The id of the last inbox entry read (undefined before the reader starts). */
  readerCursor(): string | undefined;
  /** A dead node is about to be swept. */
  gone(nodeId: string): void;
  /** A heartbeat went through: Redis is reachable. */
  beaten(): void;
  failed(): void;
}

export class Heartbeat {
  /** Nodes whose heartbeat is older than the timeout, as of the last heartbeat. */
  private dead = new Set<string>();
  /** Why the last heartbeat failed; undefined once one succeeds. */
  private failure: string | undefined;
  /** When the last heartbeat went through (ms, this process's monotonic clock). */
  private lastBeatAt = performance.now();
  private beating = false;
  /** Our node entry was found gone, and registering everything again has not gone through yet. */
  private mustReregister = false;

  constructor(
    private readonly node: HeartbeatNode,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly index: LocalIndex,
    private readonly registrations: Registrations,
    private readonly groups: GroupChanges,
    private readonly log: RedisLog,
    private readonly nodeTimeoutMs: number,
  ) {}

  /**
   * What is wrong, if anything: the last heartbeat failed, or none has gone through for the node timeout
   * (a Redis that hangs fails no command, and the other nodes count this one dead by then).
   */
  get problem(): string | undefined {
    if (this.failure !== undefined) return `Redis is unreachable (${this.failure})`;
    const silentMs = performance.now() - this.lastBeatAt;
    if (silentMs <= this.nodeTimeoutMs) return undefined;
    return `no heartbeat has gone through for ${Math.round(silentMs)} ms (Redis hangs, or this process stalled), so the other nodes count this one dead`;
  }

  isLive(nodeId: string): boolean {
    return !this.dead.has(nodeId);
  }

  /**
   * One heartbeat; the first (at start) throws when it fails, later ones report it. A beat still waiting
   * (Redis hangs) makes the next ones skip, so they do not pile up and all run at once when it answers.
   */
  async beat(first: boolean): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      await this.beatOnce(first);
    } finally {
      this.beating = false;
    }
  }

  private async beatOnce(first: boolean): Promise<void> {
    const { nodeId } = this.node;
    try {
      const reply = (await heartbeatScript.run(
        this.link,
        [this.keys.nodes],
        [nodeId, String(this.nodeTimeoutMs)],
      )) as Reply[];
      this.dead = new Set(texts(reply[1]!));
      const existed = await registry.writeNodeInfo(
        this.link,
        this.keys,
        nodeId,
        this.node.info(),
        this.nodeTimeoutMs * 3,
      );
      // Until it has all gone through: the entry written above would hide a second try.
      if (!existed && !first) this.mustReregister = true;
      if (this.mustReregister) {
        await this.reregister();
        this.mustReregister = false;
      }
      const cursor = this.node.readerCursor();
      if (cursor !== undefined) {
        const inbox = this.keys.inbox(nodeId);
        await this.link.send(inbox, ["XTRIM", inbox, "MINID", cursor]);
      }
      await this.registrations.retryRemovals();
      this.failure = undefined;
      this.lastBeatAt = performance.now();
      this.node.beaten();
      for (const dead of this.dead) await this.sweep(dead);
    } catch (err) {
      if (first) throw err;
      this.node.failed();
      if (this.failure === undefined) this.log.heartbeatFailed(nodeId, err);
      this.failure = (err as Error)?.message ?? String(err);
    }
  }

  private async sweep(nodeId: string): Promise<void> {
    this.node.gone(nodeId);
    const swept = await registry.sweepNode(this.link, this.keys, nodeId, {
      lockMs: this.nodeTimeoutMs,
      keepInboxMs: SWEPT_INBOX_KEPT_MS,
      ifSilentForMs: this.nodeTimeoutMs,
    });
    if (swept !== undefined) this.log.nodeSwept(nodeId, this.node.nodeId, swept);
  }

  /**
   * Our node entry was gone: swept while this process was paused, or Redis lost its data. Everything
   * this node holds is registered again (its inbox too, by the registry script's marker).
   */
  private async reregister(): Promise<void> {
    const { nodeId } = this.node;
    // The sweep set the inbox aside, with the sends counted here before it: it is ours again.
    await registry.takeBackInbox(this.link, this.keys, nodeId);
    // Those still registering too: a batch written before the sweep lost its sets to it. A sweep changes
    // nothing of this node's own counts, so they are written again, not changed (countDone).
    const connections = this.index.all().filter((c) => c.state === "ready" || c.state === "registering");
    const again = (c: LocalConnection, add: boolean) =>
      this.registrations.submit({
        hub: c.hub,
        connectionId: c.connectionId,
        userId: c.userId,
        add,
        countDone: true,
        info: add
          ? {
              hub: c.hub,
              connectionId: c.connectionId,
              userId: c.userId,
              resumable: c.resumable,
              connectedAt: preciseNow(),
            }
          : undefined,
      });
    await Promise.all(connections.map((c) => again(c, true)));
    // One whose registration failed meanwhile left the index: what was just written for it goes again.
    await Promise.all(
      connections.filter((c) => this.index.get(c.hub, c.connectionId) !== c).map((c) => again(c, false)),
    );
    this.groups.clearCounts();
    for (const c of connections) {
      if (c.state !== "ready") continue;
      for (const group of c.groups) {
        await registry.changeGroup(this.link, this.keys, nodeId, c.hub, c.connectionId, group, true);
        await this.groups.countMember(c.hub, group, 1);
      }
    }
    this.log.nodeReregistered(nodeId, connections.length);
  }
}
