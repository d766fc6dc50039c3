/**
 * The log events of the PostgreSQL backplane (ids 400–499; see src/log.ts for the style): one named
 * function per event, so call sites hold no raw strings.
 */
import { emit, errorFields, type Logger, type LogLevel } from "../../log.js";

/** The logger the backplane writes to: the code base's one Logger (src/log.ts). */
export type BackplaneLogger = Logger;

/** The event catalog; `createLog(logger).nodeSwept(id)` and so on. */
export function createLog(logger: Logger) {
  // The backplane's ids are 400–499: `at(…, 4, …)` is event 404.
  const at =
    (level: LogLevel, eventId: number, event: string) =>
    (message: string, fields: object = {}) =>
      emit(logger, level, 400 + eventId, event, fields, message);
  const started = at("info", 1, "BackplaneStarted");
  const stopped = at("info", 2, "BackplaneStopped");
  const migrated = at("info", 3, "MigrationApplied");
  const swept = at("warn", 4, "NodeSwept");
  const resurrected = at("warn", 5, "NodeReregistered");
  const heartbeatFailed = at("warn", 6, "HeartbeatFailed");
  const listenConnected = at("debug", 7, "ListenConnected");
  const listenLost = at("warn", 8, "ListenConnectionLost");
  const readFailed = at("warn", 9, "LogReadFailed");
  const batchFailed = at("error", 10, "BatchWriteFailed");
  const queueFull = at("warn", 11, "PublishQueueFull");
  const undecodable = at("error", 12, "LogRowUndecodable");
  const trimFailed = at("warn", 13, "TrimFailed");
  const trimmed = at("debug", 14, "LogTrimmed");
  // 15 (NotifyFailed) is retired: wake-ups are sent by the statements that write the rows.
  const deliverThrew = at("error", 16, "HandlerThrew");
  const poolError = at("warn", 17, "PoolClientError");
  const closeFailed = at("warn", 18, "UnregisterFailed");
  const publishTimedOut = at("warn", 19, "PublishTimedOut");
  const headWentBack = at("error", 20, "LogHeadWentBack");
  const groupChangeUnconfirmed = at("warn", 21, "GroupChangeUnconfirmed");
  const sessionsNotEnded = at("warn", 22, "SweptSessionsNotEnded");
  const sweptDead = at("warn", 23, "DeadNodeSwept");
  const moveFailed = at("warn", 24, "MoveFailed");
  const livenessLock = at("debug", 25, "LivenessLockTaken");
  const livenessLockBusy = at("info", 26, "LivenessLockBusy");
  const relayFailed = at("warn", 27, "OutboxRelayFailed");
  const alone = at("info", 28, "AloneChanged");
  const arrivalUnconfirmed = at("warn", 29, "ArrivalUnconfirmed");

  return {
    started: (nodeId: string, schema: string, head: number) =>
      started("PostgreSQL backplane started.", { nodeId, schema, head }),
    stopped: (nodeId: string) => stopped("PostgreSQL backplane stopped.", { nodeId }),
    migrationApplied: (schema: string, version: number, name: string) =>
      migrated(`Applied migration ${version} (${name}).`, { schema, version, name }),
    nodeSwept: (nodeId: string, byNodeId: string) =>
      swept("Removed a node whose heartbeat stopped, with its connections and groups.", { nodeId, byNodeId }),
    deadNodeSwept: (nodeId: string, byNodeId: string) =>
      sweptDead(
        "Removed a node whose database session ended (its process is gone), with its connections and groups.",
        {
          nodeId,
          byNodeId,
        },
      ),
    moveFailed: (connectionId: string, nodeId: string, err: unknown) =>
      moveFailed(
        "A step of moving a connection between nodes failed; its client will start a new connection.",
        {
          connectionId,
          nodeId,
          ...errorFields(err),
        },
      ),
    livenessLockTaken: (nodeId: string) =>
      livenessLock("This node's session holds its liveness lock: other nodes see it die within a second.", {
        nodeId,
      }),
    relayFailed: (err: unknown) =>
      relayFailed(
        "Relaying sends from SQL to the log failed; the next wake-up or heartbeat tries again.",
        errorFields(err),
      ),
    livenessLockBusy: (nodeId: string) =>
      livenessLockBusy("This node's liveness lock is held by an older session of its own; retrying.", {
        nodeId,
      }),
    nodeReregistered: (nodeId: string, connections: number) =>
      resurrected("This node had been swept as dead; registered it again with its connections.", {
        nodeId,
        connections,
      }),
    heartbeatFailed: (nodeId: string, err: unknown) =>
      heartbeatFailed("Heartbeat failed; the node will be swept if this lasts.", {
        nodeId,
        ...errorFields(err),
      }),
    listenConnected: (nodeId: string) => listenConnected("LISTEN connection established.", { nodeId }),
    listenLost: (nodeId: string, retryInMs: number, err: unknown) =>
      listenLost("LISTEN connection lost; reconnecting (polling continues meanwhile).", {
        nodeId,
        retryInMs,
        ...errorFields(err),
      }),
    readFailed: (nodeId: string, cursor: number, err: unknown) =>
      readFailed("Reading the message log failed; will retry from the same cursor.", {
        nodeId,
        cursor,
        ...errorFields(err),
      }),
    batchFailed: (messages: number, err: unknown) =>
      batchFailed("Writing a batch to the message log failed; its publishes were rejected.", {
        messages,
        ...errorFields(err),
      }),
    queueFull: (limit: number) =>
      queueFull("The publish queue is full; rejecting the publish.", { maxQueuedMessages: limit }),
    rowUndecodable: (seq: number, err: unknown) =>
      undecodable("Skipped a log row this node cannot decode.", { seq, ...errorFields(err) }),
    trimFailed: (err: unknown) => trimFailed("Trimming the message log failed.", errorFields(err)),
    trimmed: (rows: number) => trimmed("Trimmed the message log.", { rows }),
    handlerThrew: (seq: number, err: unknown) =>
      deliverThrew("The event handler threw while delivering; continuing.", { seq, ...errorFields(err) }),
    poolError: (err: unknown) => poolError("An idle database connection failed.", errorFields(err)),
    unregisterFailed: (nodeId: string, err: unknown) =>
      closeFailed("Could not unregister this node on close; it will be swept.", {
        nodeId,
        ...errorFields(err),
      }),
    logHeadWentBack: (cursor: number, head: number) =>
      headWentBack("The log's head is behind this node's cursor: the log was reset; reading from its head.", {
        cursor,
        head,
      }),
    groupChangeUnconfirmed: (owner: string, seq: number) =>
      groupChangeUnconfirmed(
        "The node owning a connection did not confirm a group change in time; sends it makes may miss it.",
        { owner, seq },
      ),
    sessionsNotEnded: (nodeIds: string[], err: unknown) =>
      sessionsNotEnded(
        "Could not end the database sessions of swept nodes; a frozen node's LISTEN session keeps filling the notification queue until it ends.",
        { nodeIds, ...errorFields(err) },
      ),
    aloneChanged: (nodeId: string, isAlone: boolean, arrived?: string) =>
      alone(
        isAlone
          ? "No other node is registered: sends are delivered here without the database."
          : "Another node is registered: sends go through the database again.",
        { nodeId, alone: isAlone, ...(arrived ? { arrived } : {}) },
      ),
    arrivalUnconfirmed: (nodeId: string, nodes: string[]) =>
      arrivalUnconfirmed(
        "Nodes did not confirm this node's arrival in time; until they read it, their sends may miss its connections.",
        { nodeId, nodes },
      ),
    publishTimedOut: (messages: number, inFlight: boolean) =>
      publishTimedOut("Publishes were not confirmed in time; rejected them.", { messages, inFlight }),
  };
}

export type Log = ReturnType<typeof createLog>;
