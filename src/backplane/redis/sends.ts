/**
 * The sends of this node to the others. Sends made while a batch is in flight go together as the next
 * batch: the batch's recipients are looked up in the registry (each user's and group's members, the
 * nodes of a hub), then each receiving node gets one inbox entry with its share, through sendScript,
 * which counts exactly the recipients that node holds at that moment. One batch at a time, so each
 * node's inbox gets this node's sends in call order.
 */
import { BackplaneUnavailableError } from "../backplane.js";
import { Batcher } from "../shared/batcher.js";
import { TargetKind, type DecodedTarget } from "../shared/targets.js";
import { splitMember, type RedisKeys } from "./keys.js";
import { hash, text, texts, type RedisLink, type Reply } from "./link.js";
import type { IsLive } from "./presence.js";
import { encodeEntry, envelopeItem } from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import { sendScript } from "./scripts.js";
import { lookUp, LookupKind, type Lookup } from "./lookups.js";

export interface Send {
  hub: string;
  target: DecodedTarget;
  /** The shared envelope, encoded once. */
  envelope: Uint8Array;
}

/** What the other nodes hold of a send's recipients. */
export interface RemoteCount {
  connections: number;
  nodes: number;
}

/** One node's share of a send: all (but the excluded), or the ids named. */
interface Share {
  send: number;
  all: boolean;
  ids: string[];
}

export class SendWriter {
  private readonly batcher: Batcher<Send, RemoteCount>;
  private queued = 0;
  private sequence = 0;
  /** The send submitted last: batches run one at a time in submission order, so it settles last. */
  private last: Promise<unknown> | undefined;
  /** A batch rejected at its deadline whose commands may still run: the next batch waits for it. */
  private abandoned: Promise<unknown> | undefined;

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
    private readonly counted: (entries: number) => void,
  ) {
    // Every send has a key of its own: none waits for a later batch because of another.
    this.batcher = new Batcher(
      (sends) => this.write(sends),
      () => String(++this.sequence),
      options.maxBatchMessages,
    );
  }

  /** Resolves with what the other nodes counted; rejects with BackplaneUnavailableError. */
  submit(send: Send): Promise<RemoteCount> {
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
  private async write(sends: Send[]): Promise<RemoteCount[]> {
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
    await this.abandoned;
    const writing = this.writeNow(sends);
    try {
      return await Promise.race([writing, deadline]);
    } catch (err) {
      if (deadlineError !== undefined && err === deadlineError)
        this.abandoned = writing.catch(() => undefined);
      this.log.batchFailed(sends.length, err);
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

  private async writeNow(sends: Send[]): Promise<RemoteCount[]> {
    const shares = await this.resolve(sends);
    const counts = sends.map(() => ({ connections: 0, nodes: 0 }));
    await Promise.all(
      [...shares].map(async ([nodeId, list]) => {
        const perSend = await this.writeTo(nodeId, list, sends);
        list.forEach((share, i) => {
          const count = perSend[i] ?? 0;
          counts[share.send]!.connections += count;
          if (count > 0) counts[share.send]!.nodes++;
        });
      }),
    );
    return counts;
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
    this.counted(1);
    return reply.map((count) => Number(count));
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

  /** Each node's shares of the batch, in send order; this node and dead ones left out. */
  private async resolve(sends: Send[]): Promise<Map<string, Share[]>> {
    // Every lookup of the batch, each key once, in one script per master (lookups.ts).
    const reads = new Map<string, number>();
    const lookupList: Lookup[] = [];
    const read = (kind: LookupKind, key: string) => {
      const id = `${kind}\n${key}`;
      let index = reads.get(id);
      if (index === undefined) {
        reads.set(id, (index = lookupList.length));
        lookupList.push({ kind, key });
      }
      return index;
    };
    const k = this.keys;
    const lookups = sends.map(({ hub, target }) => {
      switch (target.kind) {
        case TargetKind.all:
          return [read(LookupKind.hubNodes, k.hubNodes(hub))];
        case TargetKind.connections:
          return target.ids.map((id) => read(LookupKind.connectionNode, k.connection(hub, id)));
        case TargetKind.users:
          return target.ids.map((user) => read(LookupKind.members, k.user(hub, user)));
        case TargetKind.groups:
          return target.ids.map((group) => read(LookupKind.setMembers, k.group(hub, group)));
        default:
          return [];
      }
    });
    const replies = await lookUp(this.link, lookupList);
    const shares = new Map<string, Share[]>();
    sends.forEach((send, i) => {
      for (const [nodeId, ids] of this.recipients(
        send,
        lookups[i]!.map((r) => replies[r]!),
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
