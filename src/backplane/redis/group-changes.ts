/**
 * Group changes of any node's connections. The node that holds a connection makes all its changes, one
 * after the other: in the registry (the group's members, the connection's groups, the per-node count), then
 * in its own index, which serves its own sends from memory. Another node asks it through its inbox and waits
 * for the answer, so a change is in force everywhere when it resolves.
 */
import { randomUUID } from "node:crypto";
import { BackplaneUnavailableError } from "../backplane.js";
import type { LocalIndex } from "../shared/local-index.js";
import { member, type RedisKeys } from "./keys.js";
import type { RedisLink } from "./link.js";
import {
  GroupChangeOutcome,
  groupChangedItem,
  groupChangeItem,
  type InboxItem,
  type ItemType,
} from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import * as registry from "./registry.js";

/** What group changes need of the node. */
export interface GroupChangesNode {
  readonly nodeId: string;
  /** The live node holding a connection, per the registry. */
  ownerOf(hub: string, connectionId: string): Promise<string | undefined>;
  /** Appends items to a node's inbox; false when the node is gone. */
  appendTo(nodeId: string, items: unknown[][]): Promise<boolean>;
  /** Runs Redis commands, their failure a BackplaneUnavailableError. */
  run<T>(commands: () => Promise<T>): Promise<T>;
  /** Counts an error in the node's totals. */
  failed(): void;
  /** While the connection is being handed over from this node: resolves once that is over. */
  moving(hub: string, connectionId: string): Promise<void> | undefined;
}

export class GroupChanges {
  /** Changes asked of other nodes, awaiting the answer, by request id. */
  private readonly requests = new Map<string, (outcome: GroupChangeOutcome) => void>();
  /** Per connection, the change in progress. */
  private readonly queues = new Map<string, Promise<unknown>>();
  /** Changes applied here, numbered (the index keeps the newest per membership). */
  private seq = 0;
  /** This node's members per `hub\ngroup`. */
  private readonly counts = new Map<string, number>();

  constructor(
    private readonly node: GroupChangesNode,
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly index: LocalIndex,
    private readonly log: RedisLog,
    private readonly publishTimeoutMs: number,
  ) {}

  private get nodeId(): string {
    return this.node.nodeId;
  }

  /** The answer to a change this node asked for. */
  answered(requestId: string, outcome: GroupChangeOutcome): void {
    this.requests.get(requestId)?.(outcome);
  }

  /** Forgets the counts (the node registers again from scratch). */
  clearCounts(): void {
    this.counts.clear();
  }

  /** Changes a membership: here when the connection is ours, else by asking the node that holds it. */
  async change(add: boolean, hub: string, connectionId: string, group: string): Promise<GroupChangeOutcome> {
    if (this.index.get(hub, connectionId)) {
      const outcome = await this.apply(add, hub, connectionId, group);
      if (outcome !== "moving") return outcome;
      // It is moving away: once it has, its new node makes the change.
      await this.node.moving(hub, connectionId);
      return this.change(add, hub, connectionId, group);
    }
    const owner = await this.node.ownerOf(hub, connectionId);
    if (owner === undefined || owner === this.nodeId) return GroupChangeOutcome.UnknownConnection;
    const requestId = randomUUID();
    const answer = new Promise<GroupChangeOutcome | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), this.publishTimeoutMs);
      timer.unref();
      this.requests.set(requestId, (outcome) => {
        clearTimeout(timer);
        resolve(outcome);
      });
    });
    try {
      const asked = await this.node.appendTo(owner, [
        groupChangeItem(requestId, this.nodeId, hub, connectionId, group, add),
      ]);
      if (!asked) return GroupChangeOutcome.UnknownConnection;
      const outcome = await answer;
      if (outcome !== undefined) return outcome;
      this.log.groupChangeUnconfirmed(owner, connectionId);
      throw new BackplaneUnavailableError(
        `The node holding connection '${connectionId}' did not answer in time.`,
      );
    } finally {
      this.requests.delete(requestId);
    }
  }

  /** Another node asks for a group change of one of our connections: made, then answered. */
  async onAsked(item: Extract<InboxItem, { type: typeof ItemType.GroupChange }>): Promise<void> {
    try {
      // Asked of us, made wherever the connection is once any move of it is over.
      const outcome = await this.change(item.add, item.hub, item.connectionId, item.group);
      await this.node.appendTo(item.fromNode, [groupChangedItem(item.requestId, outcome)]);
    } catch (err) {
      // No answer: the asking node gives up after its timeout and says so.
      this.node.failed();
      this.log.groupChangeFailed(item.connectionId, err);
    }
  }

  /** A group change of our own connection, in order with its others: the registry, then this node's index. */
  private apply(add: boolean, hub: string, connectionId: string, group: string) {
    const key = `${hub}\n${connectionId}`;
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(async (): Promise<GroupChangeOutcome | "moving"> => {
      if (!this.index.get(hub, connectionId)) return GroupChangeOutcome.UnknownConnection;
      // Its memberships are being copied to the node it moves to: the change waits for the move.
      if (this.node.moving(hub, connectionId)) return "moving";
      const changed = await this.node.run(() =>
        registry.changeGroup(this.link, this.keys, this.nodeId, hub, connectionId, group, add),
      );
      this.index.applyGroupChange(hub, connectionId, group, add, ++this.seq);
      if (changed) await this.countMember(hub, group, add ? 1 : -1);
      return GroupChangeOutcome.Done;
    });
    const settled = next.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => {
      if (this.queues.get(key) === settled) this.queues.delete(key);
    });
    return next;
  }

  async countMember(hub: string, group: string, delta: number): Promise<void> {
    const key = `${hub}\n${group}`;
    bump(this.counts, key, delta);
    await registry
      .setCount(this.link, this.keys.hubGroups(hub), member(this.nodeId, group), this.counts.get(key) ?? 0)
      .catch(() => undefined);
  }
}

function bump(counts: Map<string, number>, key: string, delta: number): void {
  const next = (counts.get(key) ?? 0) + delta;
  if (next > 0) counts.set(key, next);
  else counts.delete(key);
}
