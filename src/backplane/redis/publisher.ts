/**
 * Publishing into a Redis cluster from a process that is not a node (a worker, a cron job): the same
 * lookups and inbox entries a node's sends make, without a node of its own (no heartbeat, no inbox, no
 * connections).
 */
import { randomUUID } from "node:crypto";
import {
  BackplaneUnavailableError,
  type BackplaneMessage,
  type BackplanePublisher,
  type SendTarget,
} from "../backplane.js";
import { encodeInvocation } from "../shared/envelopes.js";
import { settledWithin } from "../../deadline.js";
import { targetParts } from "../shared/targets.js";
import { KeptMessages } from "./kept-messages.js";
import { RedisKeys } from "./keys.js";
import { createLink, texts } from "./link.js";
import { resolveRedisOptions, type RedisBackplaneOptions } from "./options.js";
import * as presence from "./presence.js";
import { createRedisLog } from "./redis.log.js";
import { deadNodesScript } from "./scripts.js";
import { SendWriter } from "./sends.js";

/** Options of {@link createPublisher}: where Redis is (as for a node), and how sends batch. */
export type RedisPublisherOptions = Omit<RedisBackplaneOptions, "description" | "heartbeatIntervalMs">;

/** Sends to a cluster's connections from outside it; see {@link createPublisher}. */
export type RedisPublisher = BackplanePublisher;

/** How often the publisher refreshes which nodes are dead (their connections are not sent to). */
const LIVENESS_REFRESH_MS = 1000;

/**
 * Creates a {@link RedisPublisher}; it connects on first use.
 * @throws Error naming the option when an option is invalid.
 */
export function createPublisher(options: RedisPublisherOptions): RedisPublisher {
  const resolved = resolveRedisOptions(options);
  const keys = new RedisKeys(resolved.prefix);
  const log = createRedisLog(resolved.logger);
  const link = createLink(resolved, (err) => log.linkError(err));
  // Never a node's id: every recipient is elsewhere.
  const self = `publisher-${randomUUID()}`;
  let dead = new Set<string>();
  let checkedAt = 0;
  let connected: Promise<void> | undefined;
  let closing: Promise<void> | undefined;
  /** Calls made and not yet settled: close() lets them finish first. */
  const unsettled = new Set<Promise<unknown>>();

  const guard = <T>(run: () => Promise<T>): Promise<T> => {
    if (closing) return Promise.reject(new BackplaneUnavailableError("The publisher is closed."));
    const call = guarded(run);
    unsettled.add(call);
    const settle = () => unsettled.delete(call);
    call.then(settle, settle);
    return call;
  };
  const guarded = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      connected ??= link.connect();
      await connected;
      if (Date.now() - checkedAt > LIVENESS_REFRESH_MS) {
        dead = new Set(
          texts(await deadNodesScript.run(link, [keys.nodes], [String(resolved.nodeTimeoutMs)])),
        );
        checkedAt = Date.now();
      }
      return await run();
    } catch (err) {
      if (err instanceof BackplaneUnavailableError || err instanceof TypeError) throw err;
      connected = undefined;
      throw new BackplaneUnavailableError(
        `The publisher's Redis failed: ${(err as Error)?.message ?? String(err)}`,
        {
          cause: err,
        },
      );
    }
  };
  const isLive = (nodeId: string) => !dead.has(nodeId);
  const writer = new SendWriter(link, keys, self, isLive, log, resolved, {
    written: () => undefined,
    failed: () => undefined,
  });
  const kept = new KeptMessages(link, keys, (commands) => commands());
  const send = (target: SendTarget, message: BackplaneMessage) =>
    guard(async () => {
      const parts = targetParts(target);
      const envelope = encodeInvocation(parts, message);
      return writer.submit({ hub: target.hub, target: parts, envelope, localConnections: 0 });
    });

  return {
    send,
    publish: send,
    groupMembers: (hub, group) => guard(() => presence.groupMembers(link, keys, isLive, hub, group)),
    userConnections: (hub, userId) => guard(() => presence.userConnections(link, keys, isLive, hub, userId)),
    isUserConnected: async (hub, userId) =>
      (await guard(() => presence.userConnections(link, keys, isLive, hub, userId))).length > 0,
    storeMessage: (hub, key, message, ttlMs) => guard(() => kept.store(hub, key, message, ttlMs)),
    takeStoredMessages: (hub, key) => guard(() => kept.take(hub, key)),
    close() {
      // What was sent before close() is written first, for at most one publish timeout: a Redis that cannot
      // be reached keeps a connect retrying until the link closes.
      closing ??= settledWithin(Promise.allSettled([...unsettled]), resolved.publishTimeoutMs).then(() =>
        connected ? link.close() : undefined,
      );
      return closing;
    },
  };
}
