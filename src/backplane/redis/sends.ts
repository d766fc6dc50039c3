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
import { text, texts, type RedisLink, type Reply } from "./link.js";
import { hash, type IsLive } from "./presence.js";
import { encodeEntry, envelopeItem } from "./protocol.js";
import type { RedisLog } from "./redis.log.js";
import { sendScript } from "./scripts.js";

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
    return new Promise<RemoteCount>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new BackplaneUnavailableError(
            `Redis did not accept the send within ${this.options.publishTimeoutMs} ms (it may still be delivered).`,
          ),
        );
      }, this.options.publishTimeoutMs);
      this.batcher.submit(send).then(
        (count) => {
          clearTimeout(timer);
          resolve(count);
        },
        (err) => {
          clearTimeout(timer);
          reject(
            err instanceof BackplaneUnavailableError
              ? err
              : new BackplaneUnavailableError(
                  `Redis did not accept the send: ${String((err as Error)?.message ?? err)}`,
                  {
                    cause: err,
                  },
                ),
          );
        },
      );
    }).finally(() => this.queued--);
  }

  private async write(sends: Send[]): Promise<RemoteCount[]> {
    try {
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
    } catch (err) {
      this.log.batchFailed(sends.length, err);
      throw err;
    }
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
    const acked = Number(
      await this.link.send(inbox, ["WAIT", String(wanted), String(this.options.publishTimeoutMs)]),
    );
    if (acked < wanted) {
      throw new BackplaneUnavailableError(
        `Only ${acked} of ${wanted} replicas acknowledged the send in time (it may still be delivered).`,
      );
    }
  }

  /** Each node's shares of the batch, in send order; this node and dead ones left out. */
  private async resolve(sends: Send[]): Promise<Map<string, Share[]>> {
    const reads = new Map<string, Promise<Reply>>();
    const read = (key: string, args: string[]) => {
      const id = args.join("\0");
      let reply = reads.get(id);
      if (!reply) reads.set(id, (reply = this.link.send(key, args)));
      return reply;
    };
    const perSend = await Promise.all(sends.map((send) => this.recipients(send, read)));
    const shares = new Map<string, Share[]>();
    perSend.forEach((byNode, i) => {
      for (const [nodeId, ids] of byNode) {
        if (nodeId === this.nodeId || !this.isLive(nodeId)) continue;
        let list = shares.get(nodeId);
        if (!list) shares.set(nodeId, (list = []));
        list.push({ send: i, all: ids === "all", ids: ids === "all" ? sends[i]!.target.excluded : ids });
      }
    });
    return shares;
  }

  /** The nodes a send may reach, with their recipients' ids ("all" for a send to all). */
  private async recipients(
    { hub, target }: Send,
    read: (key: string, args: string[]) => Promise<Reply>,
  ): Promise<Map<string, string[] | "all">> {
    const byNode = new Map<string, string[] | "all">();
    const add = (nodeId: string, connectionId: string) => {
      const ids = byNode.get(nodeId);
      if (ids === undefined) byNode.set(nodeId, [connectionId]);
      else if (ids !== "all" && !ids.includes(connectionId)) ids.push(connectionId);
    };
    const excluded = target.excluded.length > 0 ? new Set(target.excluded) : undefined;
    const members = (reply: Reply) => {
      for (const value of texts(reply)) {
        const [nodeId, connectionId] = splitMember(value);
        if (!excluded?.has(connectionId)) add(nodeId, connectionId);
      }
    };
    const k = this.keys;
    switch (target.kind) {
      case TargetKind.all:
        for (const [nodeId, count] of hash(await read(k.hubNodes(hub), ["HGETALL", k.hubNodes(hub)]))) {
          if (Number(count) > 0) byNode.set(nodeId, "all");
        }
        break;
      case TargetKind.connections:
        await Promise.all(
          target.ids.map(async (id) => {
            const key = k.connection(hub, id);
            const nodeId = text(await read(key, ["HGET", key, "node"]));
            if (nodeId !== undefined) add(nodeId, id);
          }),
        );
        break;
      case TargetKind.users:
        (
          await Promise.all(
            target.ids.map((u) => read(k.user(hub, u), ["ZRANGE", k.user(hub, u), "0", "-1"])),
          )
        ).forEach(members);
        break;
      case TargetKind.groups:
        (
          await Promise.all(target.ids.map((g) => read(k.group(hub, g), ["SMEMBERS", k.group(hub, g)])))
        ).forEach(members);
        break;
    }
    return byNode;
  }
}
