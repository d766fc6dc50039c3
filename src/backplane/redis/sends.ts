/**
 * The sends of this node to the others. Sends made while a batch is in flight go together as the next
 * batch: the batch's recipients are looked up in the registry (each user's and group's members, the
 * nodes of a hub), then each receiving node gets one inbox entry with its share, through sendScript,
 * which counts exactly the recipients that node holds at that moment. One batch at a time, so each
 * node's inbox gets this node's sends in call order.
 *
 * A batch of sends to users only does not wait for its lookups: it writes at once to the connections
 * the last lookups named (the early wave), while the lookups run, then writes to the connections only
 * the new lookups name (the late wave). Both waves are counted by sendScript, so a connection that left
 * counts nothing and one that arrived is reached; see {@link SendWriter.writeNow} for why the order holds.
 * The lookups, and when one a node remembers stands in for a new one, are in batch-lookups.ts.
 */
import { BackplaneUnavailableError, type PublishResult } from "../backplane.js";
import { Batcher } from "../shared/batcher.js";
import { TargetKind, type DecodedTarget } from "../shared/targets.js";
import { BatchLookups, type LookupList } from "./batch-lookups.js";
import { splitMember, type RedisKeys } from "./keys.js";
import { hash, text, texts, type RedisLink, type Reply } from "./link.js";
import type { IsLive } from "./presence.js";
import { encodeEntry, envelopeItem } from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import { sendScript } from "./scripts.js";

export interface Send {
  hub: string;
  target: DecodedTarget;
  /** The shared envelope, encoded once. */
  envelope: Uint8Array;
  /**
   * The recipients the sending node reached itself, added to the count here: a send waiting in the queue
   * then holds one promise, not a second one to add them.
   */
  localConnections: number;
}

/** One node's share of a send: all (but the excluded), or the ids named. */
interface Share {
  send: number;
  all: boolean;
  ids: string[];
}

/** Whether two lookups of a user named the same members, in the same order (both as text: see lookUp). */
function sameMembers(remembered: Reply, fresh: Reply): boolean {
  if (remembered === fresh) return true;
  if (!Array.isArray(remembered) || !Array.isArray(fresh)) return remembered === fresh;
  return fresh.length === remembered.length && fresh.every((member, i) => member === remembered[i]);
}

/** The early wave's shares, one connection each, so that each share's count says whether its connection counted. */
function oneConnectionEach(shares: Map<string, Share[]>): Map<string, Share[]> {
  const split = new Map<string, Share[]>();
  for (const [nodeId, list] of shares) {
    split.set(
      nodeId,
      list.flatMap((share) => share.ids.map((id) => ({ send: share.send, all: false, ids: [id] }))),
    );
  }
  return split;
}

/**
 * The late wave: `shares` without the connections the early wave named on the same node (they have had
 * their chance there), nor those it counted on any node (a connection counted on the node it was leaving
 * gets the send from there, with its state: counting it on its new node too would deliver it twice).
 */
function lateShares(
  shares: Map<string, Share[]>,
  early: Map<string, Share[]>,
  countedEarly: readonly Set<string>[],
): Map<string, Share[]> {
  const rest = new Map<string, Share[]>();
  for (const [nodeId, list] of shares) {
    const namedHere = new Set(early.get(nodeId)?.map((share) => `${share.send}\n${share.ids[0]}`));
    const left: Share[] = [];
    for (const share of list) {
      const ids = share.ids.filter(
        (id) => !namedHere.has(`${share.send}\n${id}`) && !countedEarly[share.send]?.has(id),
      );
      if (ids.length > 0) left.push(ids.length === share.ids.length ? share : { ...share, ids });
    }
    if (left.length > 0) rest.set(nodeId, left);
  }
  return rest;
}

export class SendWriter {
  private readonly batcher: Batcher<Send, PublishResult>;
  private queued = 0;
  /** The send submitted last: batches run one at a time in submission order, so it settles last. */
  private last: Promise<unknown> | undefined;
  /** A batch rejected at its deadline whose commands may still run: the next batch waits for it. */
  private abandoned: Promise<unknown> | undefined;
  /** Batches written, and those of them that needed a late wave (a user's connections had changed). */
  readonly counters = { batches: 0, lateWaves: 0 };
  /** The batches' registry lookups, and the user lookups this node remembers. */
  readonly lookups: BatchLookups;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly nodeId: string,
    private readonly isLive: IsLive,
    private readonly log: RedisLog,
    private readonly options: {
      maxBatchMessages: number;
      maxQueuedMessages: number;
      publishTimeoutMs: number;
      inboxMaxEntries: number;
      waitForReplicas: number;
      nodeTimeoutMs: number;
    },
    /** The node's totals: inbox entries written, and batches that failed. */
    private readonly totals: { written(entries: number): void; failed(): void },
  ) {
    this.lookups = new BatchLookups(link, keys);
    // No key: sends never collide, so none waits for a later batch because of another.
    this.batcher = new Batcher((sends) => this.write(sends), undefined, options.maxBatchMessages);
  }

  /** Resolves with what this node and the others counted; rejects with BackplaneUnavailableError. */
  submit(send: Send): Promise<PublishResult> {
    if (this.queued >= this.options.maxQueuedMessages) {
      this.log.queueFull(this.options.maxQueuedMessages);
      return Promise.reject(
        new BackplaneUnavailableError(
          `The publish queue is full (${this.options.maxQueuedMessages} messages waiting for Redis).`,
        ),
      );
    }
    this.queued++;
    const sent = this.batcher.submit(send);
    this.last = sent;
    return sent;
  }

  /** Resolves once every send submitted so far has been written, or has failed. */
  async settled(): Promise<void> {
    await this.last?.catch(() => undefined);
  }

  /**
   * One batch, with one deadline for all of it (a timer per batch, not per send). A batch past its
   * deadline is rejected whole; its commands may still run later, so a rejected send may yet arrive.
   */
  private async write(sends: Send[]): Promise<PublishResult[]> {
    let timer: NodeJS.Timeout | undefined;
    // Made only when the deadline passes: an error's stack trace costs more than the rest of a small batch.
    let deadlineError: BackplaneUnavailableError | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        deadlineError = new BackplaneUnavailableError(
          `Redis did not accept the send within ${this.options.publishTimeoutMs} ms (it may still be delivered).`,
        );
        reject(deadlineError);
      }, this.options.publishTimeoutMs);
    });
    // A batch given up on may still be writing: this one starts after it, so no inbox gets them out of order.
    // The wait is inside the race, so the deadline covers it and its rejection always has a listener; a
    // batch whose deadline passed while it waited is never written.
    const writing = this.afterAbandoned(sends, () => deadlineError !== undefined);
    try {
      return await Promise.race([writing, deadline]);
    } catch (err) {
      if (deadlineError !== undefined && err === deadlineError)
        this.abandoned = writing.catch(() => undefined);
      this.log.batchFailed(sends.length, err);
      this.totals.failed();
      if (err instanceof BackplaneUnavailableError) throw err;
      throw new BackplaneUnavailableError(
        `Redis did not accept the send: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
        },
      );
    } finally {
      clearTimeout(timer);
      this.queued -= sends.length;
    }
  }

  private async afterAbandoned(sends: Send[], givenUp: () => boolean): Promise<PublishResult[]> {
    await this.abandoned;
    if (givenUp()) throw new BackplaneUnavailableError("The batch was given up before it was written.");
    return this.writeNow(sends);
  }

  /**
   * Writes a batch. A batch of sends to users only goes in two waves: the early one, to the members the
   * last lookups named, starts with the new lookups; the late one then goes to the members only the new
   * lookups name. No connection gets a send in both: the late wave leaves out what the early one named on
   * the same node, and what it counted anywhere (a connection moving to another node meanwhile may be
   * counted where it was, and then gets the send from there, with its state). Each connection's sends of a
   * batch are all in one wave: a connection belongs to one user, whose members all come from the same
   * reply, and a node counts all of one entry's shares for a connection or none. So each connection still
   * gets this node's sends in call order, and the next batch starts only once both waves are written.
   */
  private async writeNow(sends: Send[]): Promise<PublishResult[]> {
    this.counters.batches++;
    const counts = sends.map(() => ({ connections: 0, reached: new Set<string>() }));
    // Which connections the early wave counted, per send (its shares name one connection each).
    const countedEarly: Set<string>[] = [];
    const writeShares = async (shares: Map<string, Share[]>, early = false) => {
      // Every write settles before this resolves or rejects, so none runs on into the next batch.
      const outcomes = await Promise.allSettled(
        [...shares].map(async ([nodeId, list]) => {
          const perSend = await this.writeTo(nodeId, list, sends);
          list.forEach((share, i) => {
            const count = perSend[i] ?? 0;
            if (count === 0) return;
            counts[share.send]!.connections += count;
            counts[share.send]!.reached.add(nodeId);
            if (early) (countedEarly[share.send] ??= new Set()).add(share.ids[0]!);
          });
        }),
      );
      const failed = outcomes.find((outcome) => outcome.status === "rejected");
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
    };
    const lookups = this.lookups.of(sends);
    if (!sends.every((send) => send.target.kind === TargetKind.users)) {
      await writeShares(this.sharesOf(sends, lookups, await this.lookups.run(lookups)));
    } else {
      const known = this.lookups.remembered(lookups);
      const remembered = known.map((user) => user?.members ?? []);
      const early = oneConnectionEach(this.sharesOf(sends, lookups, remembered));
      // Both settle before the batch goes on, so no write of this batch is still running when the next starts.
      const [looked, written] = await Promise.allSettled([
        this.lookups.current(lookups, known),
        writeShares(early, true),
      ]);
      if (written.status === "rejected") throw written.reason;
      if (looked.status === "rejected") {
        const reason = (looked.reason as Error)?.message ?? String(looked.reason);
        throw new BackplaneUnavailableError(
          `Redis did not answer the send's lookups (it may have reached some recipients already): ${reason}`,
          { cause: looked.reason },
        );
      }
      const replies = looked.value;
      // Only a send whose users' members changed since they were remembered can have a late share.
      const changed = lookups.perSend.map((indexes) =>
        indexes.some((r) => !sameMembers(remembered[r]!, replies[r]!)),
      );
      if (changed.includes(true)) {
        const late = lateShares(this.sharesOf(sends, lookups, replies, changed), early, countedEarly);
        if (late.size > 0) {
          this.counters.lateWaves++;
          await writeShares(late);
        }
      }
    }
    return counts.map(({ connections, reached }, i) => {
      const local = sends[i]!.localConnections;
      return { connections: local + connections, nodes: (local > 0 ? 1 : 0) + reached.size };
    });
  }

  /** One entry in `nodeId`'s inbox with its shares; resolves with each share's count (0s when the node is gone). */
  private async writeTo(nodeId: string, shares: Share[], sends: Send[]): Promise<number[]> {
    const setKeys = new Map<string, number>();
    const args: (string | Buffer)[] = [
      String(this.options.inboxMaxEntries),
      String(shares.length),
      Buffer.alloc(0),
    ];
    const items: unknown[][] = [];
    for (const share of shares) {
      const send = sends[share.send]!;
      const setKey = this.keys.nodeConnections(nodeId, send.hub);
      let index = setKeys.get(setKey);
      if (index === undefined) setKeys.set(setKey, (index = setKeys.size + 2));
      args.push(String(index), share.all ? "a" : "i", String(share.ids.length), ...share.ids);
      items.push(envelopeItem(send.hub, send.envelope, share.all ? undefined : share.ids));
    }
    args[2] = encodeEntry(items);
    const inbox = this.keys.inbox(nodeId);
    const reply = await sendScript.run(this.link, [inbox, ...setKeys.keys()], args);
    if (!Array.isArray(reply)) return [];
    if (this.options.waitForReplicas > 0) await this.untilReplicated(inbox);
    const counts = reply.map((count) => Number(count));
    if (counts.some((count) => count > 0)) this.totals.written(1); // the script appends nothing when all are 0
    return counts;
  }

  /** Waits until enough replicas of the inbox's master have everything written to it so far. */
  private async untilReplicated(inbox: string): Promise<void> {
    const wanted = this.options.waitForReplicas;
    // WAIT holds the link to that master (which the heartbeat uses too): well under the node timeout.
    const waitMs = Math.min(this.options.publishTimeoutMs, Math.floor(this.options.nodeTimeoutMs / 4));
    const acked = Number(await this.link.send(inbox, ["WAIT", String(wanted), String(waitMs)]));
    if (acked < wanted) {
      throw new BackplaneUnavailableError(
        `Only ${acked} of ${wanted} replicas acknowledged the send in time (it may still be delivered).`,
      );
    }
  }

  /**
   * Each node's shares of the batch from the lookups' replies, in send order (of the sends marked in
   * `only`, when given); this node and dead ones left out.
   */
  private sharesOf(
    sends: Send[],
    lookups: LookupList,
    replies: Reply[],
    only?: boolean[],
  ): Map<string, Share[]> {
    const shares = new Map<string, Share[]>();
    sends.forEach((send, i) => {
      if (only !== undefined && !only[i]) return;
      for (const [nodeId, ids] of this.recipients(
        send,
        lookups.perSend[i]!.map((r) => replies[r]!),
      )) {
        if (nodeId === this.nodeId || !this.isLive(nodeId)) continue;
        let list = shares.get(nodeId);
        if (!list) shares.set(nodeId, (list = []));
        list.push({ send: i, all: ids === "all", ids: ids === "all" ? send.target.excluded : [...ids] });
      }
    });
    return shares;
  }

  /** The nodes a send may reach, with their recipients' ids ("all" for a send to all), from its lookups. */
  private recipients({ target }: Send, replies: Reply[]): Map<string, Set<string> | "all"> {
    const byNode = new Map<string, Set<string> | "all">();
    // Exclusions: the target's own, and connections the sender reaches directly (moving in or out).
    const excluded = target.excluded.length > 0 ? new Set(target.excluded) : undefined;
    const add = (nodeId: string, connectionId: string) => {
      if (excluded?.has(connectionId)) return;
      const ids = byNode.get(nodeId);
      if (ids === undefined) byNode.set(nodeId, new Set([connectionId]));
      else if (ids !== "all") ids.add(connectionId);
    };
    switch (target.kind) {
      case TargetKind.all:
        for (const [nodeId, count] of hash(replies[0]!)) if (Number(count) > 0) byNode.set(nodeId, "all");
        break;
      case TargetKind.connections:
        replies.forEach((reply, i) => {
          const nodeId = text(reply);
          if (nodeId !== undefined) add(nodeId, target.ids[i]!);
        });
        break;
      default:
        // Users' and groups' members, as `node\nconnection`.
        for (const reply of replies) {
          for (const value of texts(reply)) {
            const [nodeId, connectionId] = splitMember(value);
            add(nodeId, connectionId);
          }
        }
    }
    return byNode;
  }
}
