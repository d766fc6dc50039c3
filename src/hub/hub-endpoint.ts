import {
  canMoveConnections,
  routesClientResults,
  type Backplane,
  type BackplaneMessage,
  type ClientResult,
  type ConnectionLocation,
  type PublishResult,
  type SendTarget,
} from "../backplane/backplane.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { MessageType, type HubMessage } from "../protocol/messages.js";
import type { AuthenticatedUser } from "../transport/endpoint-options.js";
import type {
  ConnectionCallbacks,
  ConnectionHandler,
  ResumeDecision,
  ResumeRequest,
  TransportConnection,
} from "../transport/transport-connection.js";
import { HubClientsImpl, type GroupManager, type HubClients, type InvokeOptions } from "./clients.js";
import { askingNode, ClientResults } from "./client-results.js";
import { decodeConnectionState, encodeConnectionState } from "./connection-handover.js";
import { endConnection, openConnection, type LifecycleHost } from "./connection-lifecycle.js";
import { ConnectionStore } from "./connection-store.js";
import { HubActivator } from "./hub-activator.js";
import { applyAuthorization, type AuthorizationRule } from "./hub-authorization.js";
import {
  HubConnection,
  type AnswerOutcome,
  type HubConnectionHost,
  type TransportEnd,
} from "./hub-connection.js";
import { HubDispatcher } from "./hub-dispatcher.js";
import { Hub, type HubDefinition } from "./hub.js";
import { hubLog } from "./hub.log.js";
import { type Logger } from "../log.js";
import type { HubOptions } from "./hub-options.js";
import { KeepAlive } from "./keep-alive.js";
import { hubPresence, type HubPresence } from "./hub-presence.js";
import { buildMethodTable } from "./method-table.js";
import { noMetrics, type HubMetrics } from "./hub-metrics.js";

/** A hub's clients and groups for code outside hub methods: an HTTP handler, a timer, a worker. */
export interface HubContext {
  readonly clients: Omit<HubClients, "caller" | "others" | "othersInGroup">;
  readonly groups: GroupManager;
  readonly presence: HubPresence;
}

export interface HubEndpointOptions {
  /** The hub's path, which is also its name in the backplane ("/hubs/chat"). */
  path: string;
  definition: HubDefinition;
  backplane: Backplane;
  protocols: readonly HubProtocol[];
  options: HubOptions;
  log: Logger;
  metrics?: HubMetrics;
}

/**
 * One hub on this node: its connections, each living through connection-lifecycle.ts,
 * the dispatcher, the keep-alive, and the delivery of backplane messages to its local connections. The
 * transport layer sees it as a ConnectionHandler; the backplane reaches it through the server's router.
 */
export class HubEndpoint implements ConnectionHandler, HubConnectionHost {
  readonly hub: string;
  readonly options: HubOptions;
  readonly log: Logger;
  readonly metrics: HubMetrics;
  private readonly backplane: Backplane;
  private readonly protocols: Map<string, HubProtocol>;
  private readonly activator: HubActivator;
  /** Who is connected to this hub, cluster-wide (the registry's answers). */
  readonly presence: HubPresence & { close(): void };
  private readonly dispatcher: HubDispatcher;
  private readonly store = new ConnectionStore();
  private readonly keepAlive: KeepAlive;
  private readonly groupManager: GroupManager;
  private readonly outsideClients: HubClientsImpl;
  /**
   * Whether a user may connect, for the transport layer's negotiate and connect requests (the hub's
   * `authorize.connect`); undefined when the hub lets everyone in.
   */
  readonly authorizeConnection: ((user: AuthenticatedUser) => boolean) | undefined;
  /** Client results this node awaits, from connections here or on other nodes. */
  private readonly clientResults: ClientResults;
  /** Lifecycles still running (close waits for their onDisconnected), and close's wait for them. */
  private running = 0;
  private allFinished: (() => void) | undefined;

  constructor(options: HubEndpointOptions) {
    this.hub = options.path;
    this.backplane = options.backplane;
    this.options = options.options;
    this.log = options.log;
    this.metrics = options.metrics ?? noMetrics;
    this.protocols = new Map(options.protocols.map((p) => [p.name, p]));
    this.groupManager = {
      add: (connectionId, group) => this.backplane.addToGroup(this.hub, connectionId, group),
      remove: (connectionId, group) => this.backplane.removeFromGroup(this.hub, connectionId, group),
    };
    const backplane = this.backplane;
    this.clientResults = new ClientResults(
      backplane.nodeId,
      canMoveConnections(backplane) ? (id) => backplane.locateConnection(this.hub, id) : undefined,
    );
    this.presence = hubPresence(this.hub, this.backplane);
    const sinks = {
      publish: this.publish,
      invoke: this.invoke,
      groups: this.groupManager,
      presence: this.presence,
    };
    this.activator = new HubActivator(this.hub, options.definition, sinks);
    const methods = buildMethodTable(options.definition, Hub.prototype);
    const connectRule = applyAuthorization(this.hub, options.definition, methods);
    this.authorizeConnection = connectRule && ((user) => this.mayConnect(connectRule, user));
    this.dispatcher = new HubDispatcher(
      methods,
      (c, cancellation) => this.activator.activate(c, cancellation),
      this.options,
      this.log,
      this.metrics,
    );
    this.outsideClients = new HubClientsImpl(this.hub, sinks);
    this.keepAlive = new KeepAlive(() => this.store.values(), options.protocols, this.options, this.log);
  }

  /** Runs the hub's connect rule; one that throws refuses (authorization fails closed). */
  private mayConnect(rule: AuthorizationRule, user: AuthenticatedUser): boolean {
    try {
      return rule({ userId: user.userId, claims: user.claims }) === true;
    } catch (err) {
      hubLog.authorizationRuleFailed(this.log, { hub: this.hub, userId: user.userId }, err);
      return false;
    }
  }

  /** The hub's clients and groups, for use outside hub methods. */
  get context(): HubContext {
    return { clients: this.outsideClients, groups: this.groupManager, presence: this.presence };
  }

  /** The id of this node. */
  get nodeId(): string {
    return this.backplane.nodeId;
  }

  /** Connections of this hub on this node (those waiting for their client to resume included). */
  get connectionCount(): number {
    return this.store.size;
  }

  /** Protocol names match case-insensitively, as in ASP.NET Core. */
  resolveProtocol(name: string): HubProtocol | undefined {
    return this.protocols.get(name.toLowerCase());
  }

  onConnected(transport: TransportConnection): ConnectionCallbacks {
    const connection = new HubConnection(transport.connectionId, this, { transport });
    this.run(connection, "new");
    return connection.callbacks;
  }

  dispatch(connection: HubConnection, message: HubMessage): Promise<void> | undefined {
    return this.dispatcher.dispatch(connection, message);
  }

  /**
   * A client came back with the token of a stateful connection: resume it here, take it over from the
   * node holding it, start it as new (it never started), or refuse.
   */
  async resume(request: ResumeRequest): Promise<ResumeDecision> {
    const { connectionId, tokenFresh } = request;
    const local = this.store.get(connectionId);
    if (local !== undefined) {
      if (!local.isResumable) return refuse("the connection has ended or cannot be resumed");
      return { kind: "resume", attach: (transport) => local.attach(transport) };
    }
    if (!canMoveConnections(this.backplane)) {
      return tokenFresh ? { kind: "new" } : refuse("no such connection on this node");
    }
    let where: ConnectionLocation;
    try {
      where = await this.backplane.locateConnection(this.hub, connectionId);
    } catch (err) {
      return refuse(`the registry could not be read: ${String(err)}`);
    }
    switch (where.kind) {
      case "unknown":
        return tokenFresh ? { kind: "new" } : refuse("no such connection");
      case "ended":
        return refuse("the connection has ended");
      case "here":
        return refuse("the connection is ending on this node");
      case "elsewhere":
        if (!where.resumable) return refuse("the connection did not agree to stateful reconnect");
        if (!where.nodeAlive) return refuse("the node that held the connection is gone");
        // Another resume of the same connection may have started while we looked it up.
        if (this.store.get(connectionId) !== undefined)
          return refuse("the connection is being resumed already");
        return this.takeOver(connectionId, where.nodeId, request);
    }
  }

  /**
   * Delivers a backplane message to connections of this hub on this node: serialised once per protocol in
   * use, whatever the number of recipients.
   */
  deliver(connectionIds: readonly string[], message: BackplaneMessage): void {
    const invocation: HubMessage = {
      type: MessageType.Invocation,
      target: message.target,
      arguments: message.arguments,
    };
    if (message.invocationId !== undefined) {
      // A client result: sent to one connection, which then owes the asking node an answer.
      return this.store
        .get(connectionIds[0]!)
        ?.askForResult({ ...invocation, invocationId: message.invocationId }, undefined);
    }
    const frames = new Map<HubProtocol, Buffer>();
    for (const id of connectionIds) {
      const connection = this.store.get(id);
      if (!connection?.isConnected) continue;
      if (connection.isAdopting) {
        connection.writeFrame(invocation, undefined); // kept as it is until its protocol is known
        continue;
      }
      const protocol = connection.protocol;
      let frame = frames.get(protocol);
      if (!frame) {
        try {
          frame = protocol.write(invocation);
        } catch (err) {
          // A value this protocol cannot carry (a cycle, a BigInt): this recipient misses it.
          hubLog.deliveryFailed(
            this.log,
            connection.ids,
            message.target,
            `not serialisable as ${protocol.name}: ${String(err)}`,
          );
          this.metrics.deliveryFailed(this.hub, "unserializable");
          continue;
        }
        frames.set(protocol, frame);
      }
      if (!connection.writeFrame(invocation, frame)) {
        hubLog.deliveryFailed(
          this.log,
          connection.ids,
          message.target,
          "the client's outgoing buffer is full",
        );
      }
    }
  }

  /** Closes a connection of this node on an administrator's request; its client may reconnect. */
  disconnect(connectionId: string): void {
    const connection = this.store.get(connectionId);
    if (connection === undefined) return;
    hubLog.disconnectedByAdministrator(this.log, { hub: this.hub, connectionId });
    connection.close("Disconnected by an administrator.", true);
  }

  /** A client's answer arrived through the backplane, for a call of this node. */
  deliverClientResult(result: ClientResult): void {
    if (!this.clientResults.complete(result)) {
      hubLog.clientResultUnclaimed(
        this.log,
        { hub: this.hub, connectionId: result.connectionId },
        result.invocationId,
      );
    }
  }

  /**
   * A connection of this node answered a call (or ended before it did): the answer goes to the node that
   * asked, which the invocation id names.
   */
  clientAnswered(connection: HubConnection, invocationId: string, outcome: AnswerOutcome): void {
    const result: ClientResult = {
      hub: this.hub,
      invocationId,
      connectionId: connection.connectionId,
      outcome,
    };
    const asking = askingNode(invocationId);
    if (asking === this.nodeId) {
      if (!this.clientResults.complete(result)) {
        hubLog.clientResultUnclaimed(this.log, connection.ids, invocationId);
      }
      return;
    }
    const backplane = this.backplane;
    if (asking === undefined || !routesClientResults(backplane)) {
      hubLog.clientResultUnrouted(this.log, connection.ids, invocationId, "no route to the node that asked");
      return;
    }
    backplane.sendClientResult(asking, result).catch((err: unknown) => {
      hubLog.clientResultUnrouted(this.log, connection.ids, invocationId, String(err));
    });
  }

  /**
   * Gets a connection ready to move to another node (see {@link handOver}): nothing more is dispatched
   * here, and invocations running now get up to {@link HAND_OVER_GRACE_MS} to finish.
   */
  async prepareHandOver(connectionId: string): Promise<boolean> {
    return (await this.store.get(connectionId)?.prepareHandOver(HAND_OVER_GRACE_MS)) ?? false;
  }

  /** The move did not happen: the connection goes on here. */
  cancelHandOver(connectionId: string): void {
    this.store.get(connectionId)?.cancelHandOver();
  }

  /** Hands a connection over to the node its client resumed on: its state, or undefined to refuse. */
  handOver(connectionId: string): Uint8Array | undefined {
    const connection = this.store.get(connectionId);
    const state = connection?.handOver();
    if (!connection || !state) return undefined;
    const { bytes, dropped } = encodeConnectionState(state);
    hubLog.handedOver(this.log, connection.ids, dropped);
    return bytes;
  }

  /**
   * Ends every connection with a Close message that lets clients reconnect (to another node, when there is
   * one), and waits for their onDisconnected hooks.
   */
  async close(): Promise<void> {
    this.keepAlive.stop();
    this.presence.close();
    for (const connection of this.store.values()) {
      if (connection.isHandshaking) connection.handshakeTimedOut();
      else connection.close(undefined, true);
    }
    if (this.running > 0) await new Promise<void>((resolve) => (this.allFinished = resolve));
    this.clientResults.close();
  }

  /** Opens a connection's lifecycle; it leaves the store when the lifecycle is over. */
  private run(connection: HubConnection, start: "new" | "adopted"): void {
    this.store.add(connection);
    this.running++;
    void openConnection(connection, this.lifecycle, start);
  }

  /** A serving connection's transport ended: the rest of its lifecycle (see HubConnectionHost). */
  connectionEnded(connection: HubConnection, end: TransportEnd): void {
    void endConnection(connection, this.lifecycle, end);
  }

  /**
   * Takes a connection over from the node that holds it. Its placeholder is in the store first, so what
   * this node sends it meanwhile is kept for it; the state then arrives with everything sent before.
   */
  private async takeOver(
    connectionId: string,
    from: string,
    request: ResumeRequest,
  ): Promise<ResumeDecision> {
    const mover = this.backplane;
    if (!canMoveConnections(mover)) return refuse("the backplane cannot move connections");
    const connection = new HubConnection(connectionId, this, { adopt: request.request });
    this.store.add(connection);
    try {
      const state = decodeConnectionState(await mover.takeOverConnection(this.hub, connectionId, from));
      if (!connection.install(state)) throw new Error(`its protocol '${state.protocol}' is not served here`);
    } catch (err) {
      connection.abandon();
      this.store.remove(connection);
      hubLog.takeOverFailed(this.log, { hub: this.hub, connectionId }, from, err);
      return refuse(
        `the connection could not be taken over: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    hubLog.tookOver(this.log, connection.ids, from);
    this.run(connection, "adopted");
    return { kind: "resume", attach: (transport) => connection.attach(transport) };
  }

  /** Asks one connection of this hub, on any node, for a result (client-results.ts). */
  private readonly invoke = (
    connectionId: string,
    message: BackplaneMessage,
    options: InvokeOptions,
  ): Promise<unknown> =>
    this.clientResults.invoke(
      connectionId,
      message.target,
      (invocationId) =>
        this.publish(
          { kind: "connections", hub: this.hub, connectionIds: [connectionId] },
          { ...message, invocationId },
        ),
      { timeoutMs: options.timeoutMs ?? this.options.clientResultTimeoutMs, signal: options.signal },
    );

  private readonly publish = (target: SendTarget, message: BackplaneMessage): Promise<PublishResult> => {
    // Only the method's name waits with the send: the message itself can go as soon as it is encoded.
    const method = message.target;
    return this.backplane.publish(target, message).catch((err: unknown) => {
      hubLog.sendFailed(this.log, this.hub, method, err);
      throw err;
    });
  };

  /** The lifecycle's steps that reach outside the connection: the registry and the hub's hooks. */
  private readonly lifecycle: LifecycleHost = {
    register: (connection) =>
      this.backplane
        .addConnection({
          connectionId: connection.connectionId,
          hub: this.hub,
          userId: connection.request.userId ?? "",
          resumable: connection.isResumable,
        })
        .catch((err: unknown) => {
          hubLog.registryFailed(this.log, connection.ids, err);
          throw err;
        }),
    unregister: async (connection) => {
      try {
        await this.backplane.removeConnection(this.hub, connection.connectionId);
      } catch (err) {
        hubLog.registryFailed(this.log, connection.ids, err);
      }
    },
    onConnected: async (connection) => {
      hubLog.connected(this.log, connection.ids, connection.request.userId);
      const hub = this.activator.activate(connection);
      try {
        if (typeof hub.onConnected === "function") await (hub.onConnected as () => unknown).call(hub);
      } catch (err) {
        hubLog.lifecycleHookFailed(this.log, connection.ids, "onConnected", err);
        throw err;
      }
    },
    onDisconnected: async (connection, error) => {
      try {
        const hub = this.activator.activate(connection);
        if (typeof hub.onDisconnected === "function") {
          await (hub.onDisconnected as (e?: Error) => unknown).call(hub, error);
        }
      } catch (err) {
        hubLog.lifecycleHookFailed(this.log, connection.ids, "onDisconnected", err);
      }
    },
    opened: () => this.metrics.connectionOpened(this.hub),
    closed: (connection, error) => {
      this.metrics.connectionClosed(this.hub);
      hubLog.disconnected(this.log, connection.ids, error?.message);
    },
    finished: (connection, error) => {
      if (error !== undefined) hubLog.lifecycleHookFailed(this.log, connection.ids, "lifecycle", error);
      this.store.remove(connection);
      if (--this.running === 0) this.allFinished?.();
    },
  };
}

/**
 * How long invocations running on a connection may take to finish before it moves to another node; those
 * still running then end with an error the client sees (their results could not follow the connection).
 */
const HAND_OVER_GRACE_MS = 2000;

function refuse(reason: string): ResumeDecision {
  return { kind: "refuse", reason };
}
