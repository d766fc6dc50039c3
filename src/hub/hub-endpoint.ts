import type { Backplane, BackplaneMessage, PublishResult, SendTarget } from "../backplane/backplane.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { MessageType, type HubMessage } from "../protocol/messages.js";
import type {
  ConnectionCallbacks,
  ConnectionHandler,
  TransportConnection,
} from "../transport/transport-connection.js";
import { HubClientsImpl, type CallerSink, type GroupManager, type HubClients } from "./clients.js";
import { clockNow, HubConnection, type HubConnectionHost } from "./hub-connection.js";
import { HubDispatcher } from "./hub-dispatcher.js";
import { invocationCancellation, type InvocationCancellation } from "./invocation-cancellation.js";
import { Hub, type HubDefinition } from "./hub.js";
import { hubLog, type Logger } from "./hub.log.js";
import type { HubOptions } from "./hub-options.js";
import { buildMethodTable, type HubMethod } from "./method-table.js";
import { noMetrics, type HubMetrics } from "./hub-metrics.js";

/** A hub's clients and groups for code outside hub methods: an HTTP handler, a timer, a worker. */
export interface HubContext {
  readonly clients: Omit<HubClients, "caller" | "others" | "othersInGroup">;
  readonly groups: GroupManager;
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
 * Everything one hub needs at run time: its connections on this node, the dispatcher, keep-alive, and the
 * delivery of backplane messages to its local connections. The transport layer sees it as a ConnectionHandler.
 */
export class HubEndpoint implements ConnectionHandler, HubConnectionHost {
  readonly hub: string;
  readonly options: HubOptions;
  readonly log: Logger;
  readonly metrics: HubMetrics;
  private readonly backplane: Backplane;
  private readonly definition: HubDefinition;
  /** What a hub given as a plain object is made from: the object, with Hub's `signal` accessor in front. */
  private readonly objectHubPrototype: object | undefined;
  /** Whether hub instances read `signal` from their context when none was set (Hub subclasses, objects). */
  private readonly signalFromContext: boolean;
  private readonly protocols: Map<string, HubProtocol>;
  private readonly methods: Map<string, HubMethod>;
  private readonly dispatcher: HubDispatcher;
  private readonly connections = new Map<string, HubConnection>();
  private readonly pingBytes = new Map<string, Buffer>();
  private readonly groupManager: GroupManager;
  private readonly outsideClients: HubClientsImpl;
  private readonly disconnecting = new Set<Promise<void>>();
  private readonly timer: NodeJS.Timeout;

  constructor(options: HubEndpointOptions) {
    this.hub = options.path;
    this.definition = options.definition;
    const signalAccessor = Object.getOwnPropertyDescriptor(Hub.prototype, "signal")!;
    this.objectHubPrototype =
      typeof this.definition === "function"
        ? undefined
        : Object.create(this.definition, { signal: signalAccessor });
    this.signalFromContext =
      typeof this.definition !== "function" || this.definition.prototype instanceof Hub;
    this.backplane = options.backplane;
    this.options = options.options;
    this.log = options.log;
    this.metrics = options.metrics ?? noMetrics;
    this.protocols = new Map(options.protocols.map((p) => [p.name, p]));
    for (const p of options.protocols) this.pingBytes.set(p.name, p.write({ type: MessageType.Ping }));
    this.methods = buildMethodTable(this.definition, Hub.prototype);
    this.dispatcher = new HubDispatcher(
      this.methods,
      (c, signal) => this.activate(c, signal),
      this.options,
      this.log,
      this.metrics,
    );
    this.groupManager = {
      add: (connectionId, group) => this.backplane.addToGroup(this.hub, connectionId, group),
      remove: (connectionId, group) => this.backplane.removeFromGroup(this.hub, connectionId, group),
    };
    this.outsideClients = new HubClientsImpl(this.hub, this.sink);
    const { keepAliveIntervalMs, clientTimeoutMs, handshakeTimeoutMs } = this.options;
    const tick = Math.max(
      10,
      Math.min(1000, keepAliveIntervalMs / 2, clientTimeoutMs / 4, handshakeTimeoutMs / 2),
    );
    this.timer = setInterval(() => this.tick(), tick).unref();
  }

  /** The hub's clients and groups, for use outside hub methods. */
  get context(): HubContext {
    return { clients: this.outsideClients, groups: this.groupManager };
  }

  /** The id of this node. */
  get nodeId(): string {
    return this.backplane.nodeId;
  }

  /** Connections of this hub on this node. */
  get connectionCount(): number {
    return this.connections.size;
  }

  onConnected(transport: TransportConnection): ConnectionCallbacks {
    const connection = new HubConnection(transport, this);
    this.connections.set(connection.connectionId, connection);
    return connection;
  }

  /** Protocol names match case-insensitively, as in ASP.NET Core. */
  resolveProtocol(name: string): HubProtocol | undefined {
    return this.protocols.get(name.toLowerCase());
  }

  async connected(connection: HubConnection): Promise<void> {
    const { transport } = connection;
    await this.backplane.addConnection({
      connectionId: connection.connectionId,
      hub: this.hub,
      userId: transport.request.userId ?? "",
    });
    // Closed while the registry was written: runDisconnected undoes the registration; no hooks run.
    if (!connection.isConnected) return;
    hubLog.connected(this.log, connection.ids, transport.request.userId);
    this.metrics.connectionOpened(this.hub);
    // Also what makes runDisconnected count the close: each open and close is counted once.
    connection.hooksStarted = true;
    const hub = this.activate(connection);
    if (typeof hub.onConnected === "function") await (hub.onConnected as () => unknown).call(hub);
  }

  dispatch(connection: HubConnection, message: HubMessage): Promise<void> | undefined {
    return this.dispatcher.dispatch(connection, message);
  }

  disconnected(connection: HubConnection, error: Error | undefined, registered: boolean): Promise<void> {
    if (!registered) {
      // Ended before its handshake completed: it was never in the registry, and no hook ran.
      this.connections.delete(connection.connectionId);
      return Promise.resolve();
    }
    const done = this.runDisconnected(connection, error).finally(() => this.disconnecting.delete(done));
    this.disconnecting.add(done);
    return done;
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
    const frames = new Map<HubProtocol, Buffer>();
    for (const id of connectionIds) {
      const connection = this.connections.get(id);
      if (!connection?.isConnected) continue;
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
      if (!connection.writeBytes(frame)) {
        hubLog.deliveryFailed(
          this.log,
          connection.ids,
          message.target,
          "the client's outgoing buffer is full",
        );
      }
    }
  }

  /**
   * Ends every connection with a Close message that lets clients reconnect (to another node, when there is
   * one), and waits for their onDisconnected hooks.
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    for (const connection of this.connections.values()) {
      if (connection.isHandshaking) connection.transport.close();
      else connection.close(undefined, true);
    }
    await Promise.allSettled([...this.disconnecting]);
  }

  private async runDisconnected(connection: HubConnection, error: Error | undefined): Promise<void> {
    // Undo the registration only once it has finished (else its insert could land after our delete), and
    // run onDisconnected only after onConnected, and only if it was started.
    await connection.registration?.catch(() => undefined);
    if (connection.hooksStarted) {
      try {
        const hub = this.activate(connection);
        if (typeof hub.onDisconnected === "function") {
          await (hub.onDisconnected as (e?: Error) => unknown).call(hub, error);
        }
      } catch (err) {
        hubLog.lifecycleHookFailed(this.log, connection.ids, "onDisconnected", err);
      }
    }
    if (connection.hooksStarted) this.metrics.connectionClosed(this.hub);
    try {
      await this.backplane.removeConnection(this.hub, connection.connectionId);
    } catch (err) {
      hubLog.registryFailed(this.log, connection.ids, err);
    } finally {
      this.connections.delete(connection.connectionId);
      hubLog.disconnected(this.log, connection.ids, error?.message);
    }
  }

  private readonly sink = {
    publish: (target: SendTarget, message: BackplaneMessage): Promise<PublishResult> =>
      this.backplane.publish(target, message).catch((err: unknown) => {
        hubLog.sendFailed(this.log, this.hub, message.target, err);
        throw err;
      }),
  };

  /**
   * A hub instance for one call, with the caller's context, clients, groups and abort signal. Hub's
   * `signal` accessor makes or fetches the signal only when read: the invocation's, or without one (the
   * lifecycle hooks) the connection's. Most methods never read it, and an AbortSignal is the largest thing
   * an idle connection would hold.
   */
  private activate(
    connection: HubConnection,
    cancellation?: InvocationCancellation,
  ): Record<string, unknown> {
    const hub = (
      typeof this.definition === "function"
        ? new this.definition()
        : Object.create(this.objectHubPrototype as object)
    ) as Record<string, unknown>;
    const caller: CallerSink = {
      connectionId: connection.connectionId,
      send: (message) => {
        if (connection.isConnected) {
          connection.write({
            type: MessageType.Invocation,
            target: message.target,
            arguments: message.arguments,
          });
        }
      },
    };
    hub.context = connection.context;
    hub.clients = new HubClientsImpl(this.hub, this.sink, caller);
    hub.groups = this.groupManager;
    if (!this.signalFromContext) {
      hub.signal = cancellation?.signal ?? connection.signal; // a class without Hub's accessor
    } else if (cancellation) {
      (hub as { [invocationCancellation]?: InvocationCancellation })[invocationCancellation] = cancellation;
    }
    return hub;
  }

  /** Keep-alive pings, client timeouts and handshake timeouts, for every connection, on one timer. */
  private tick(): void {
    const now = clockNow();
    const { keepAliveIntervalMs, clientTimeoutMs, handshakeTimeoutMs } = this.options;
    for (const connection of this.connections.values()) {
      if (connection.isHandshaking) {
        if (now - connection.openedAt >= handshakeTimeoutMs) connection.handshakeTimedOut();
        continue;
      }
      if (!connection.isConnected || connection.transport.inherentKeepAlive) continue;
      if (connection.pingReceived && now - connection.lastReceivedAt >= clientTimeoutMs) {
        hubLog.clientTimedOut(this.log, connection.ids, clientTimeoutMs);
        connection.close(
          `Connection closed with an error. Nothing was received from the client for ${clientTimeoutMs} ms.`,
          true,
        );
        continue;
      }
      if (now - connection.lastSentAt >= keepAliveIntervalMs)
        connection.writeBytes(this.pingBytes.get(connection.protocol.name)!);
    }
  }
}
