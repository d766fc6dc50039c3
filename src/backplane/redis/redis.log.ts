/**
 * The log events of the Redis backplane (ids 700–799; see src/log.ts for the style): one named function
 * per event, so call sites hold no raw strings.
 */
import { emit, errorFields, type Logger } from "../../log.js";

export function createRedisLog(logger: Logger) {
  return {
    started: (nodeId: string, cluster: boolean, prefix: string) =>
      emit(
        logger,
        "info",
        701,
        "RedisBackplaneStarted",
        { nodeId, cluster, prefix },
        "Redis backplane started.",
      ),
    stopped: (nodeId: string) =>
      emit(logger, "info", 702, "RedisBackplaneStopped", { nodeId }, "Redis backplane stopped."),
    linkError: (err: unknown) =>
      emit(
        logger,
        "warn",
        703,
        "RedisLinkError",
        errorFields(err),
        "A Redis connection failed; reconnecting.",
      ),
    heartbeatFailed: (nodeId: string, err: unknown) =>
      emit(
        logger,
        "warn",
        704,
        "RedisHeartbeatFailed",
        { nodeId, ...errorFields(err) },
        "Heartbeat failed; the node will be swept if this lasts.",
      ),
    inboxReadFailed: (nodeId: string, lastId: string, err: unknown) =>
      emit(
        logger,
        "warn",
        705,
        "InboxReadFailed",
        { nodeId, lastId, ...errorFields(err) },
        "Reading this node's inbox failed; will read again from the same entry.",
      ),
    batchFailed: (messages: number, err: unknown) =>
      emit(
        logger,
        "error",
        706,
        "RedisBatchFailed",
        { messages, ...errorFields(err) },
        "Writing a batch of sends to Redis failed; its publishes were rejected.",
      ),
    queueFull: (limit: number) =>
      emit(
        logger,
        "warn",
        707,
        "RedisPublishQueueFull",
        { maxQueuedMessages: limit },
        "The publish queue is full; rejecting the publish.",
      ),
    entryUndecodable: (entryId: string, err: unknown) =>
      emit(
        logger,
        "error",
        708,
        "InboxEntryUndecodable",
        { entryId, ...errorFields(err) },
        "Skipped an inbox entry this node cannot decode.",
      ),
    handlerThrew: (err: unknown) =>
      emit(
        logger,
        "error",
        709,
        "RedisHandlerThrew",
        errorFields(err),
        "The event handler threw while delivering; continuing.",
      ),
    nodeSwept: (nodeId: string, byNodeId: string, connections: number) =>
      emit(
        logger,
        "warn",
        710,
        "RedisNodeSwept",
        { nodeId, byNodeId, connections },
        "Removed a node whose heartbeat stopped, with its connections and groups.",
      ),
    nodeReregistered: (nodeId: string, connections: number) =>
      emit(
        logger,
        "warn",
        711,
        "RedisNodeReregistered",
        { nodeId, connections },
        "This node's registry entry was gone (swept while paused, or Redis lost its data); registered it again with its connections.",
      ),
    groupChangeUnconfirmed: (owner: string, connectionId: string) =>
      emit(
        logger,
        "warn",
        712,
        "RedisGroupChangeUnconfirmed",
        { owner, connectionId },
        "The node owning a connection did not confirm a group change in time.",
      ),
    groupChangeFailed: (connectionId: string, err: unknown) =>
      emit(
        logger,
        "warn",
        714,
        "RedisGroupChangeFailed",
        { connectionId, ...errorFields(err) },
        "A group change another node asked for failed; that node's call fails after its timeout.",
      ),
    moveFailed: (connectionId: string, nodeId: string, err: unknown) =>
      emit(
        logger,
        "warn",
        715,
        "RedisMoveFailed",
        { connectionId, nodeId, ...errorFields(err) },
        "A step of moving a connection between nodes failed; its client will start a new connection.",
      ),
    unregisterFailed: (nodeId: string, err: unknown) =>
      emit(
        logger,
        "warn",
        713,
        "RedisUnregisterFailed",
        { nodeId, ...errorFields(err) },
        "Could not unregister this node on close; it will be swept.",
      ),
  };
}

export type RedisLog = ReturnType<typeof createRedisLog>;
