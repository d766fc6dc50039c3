import type { BackplaneMessage, PublishResult, SendTarget } from "../backplane/backplane.js";

/** Something clients can be sent to: one connection, several, a group, a user, everyone. */
export interface ClientProxy {
  /**
   * Invokes `method` on every client this proxy names, on whichever node they are connected, without waiting
   * for them. Resolves once the message is accepted for delivery, with how many connections (on how many
   * nodes) it was addressed to; rejects when the backplane cannot accept it.
   */
  send(method: string, ...args: unknown[]): Promise<PublishResult>;
}

/** How long, at most, and until when a client result is awaited. */
export interface InvokeOptions {
  /** Milliseconds to wait for the client's answer; default the hub's `clientResultTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting it ends the wait (the client may still run its handler; its answer is then ignored). */
  signal?: AbortSignal;
}

/**
 * One connection: it can be sent to, and asked for a result (ASP.NET Core's ISingleClientProxy).
 */
export interface SingleClientProxy extends ClientProxy {
  /**
   * Invokes `method` on the client and resolves with what its handler returned (`connection.on(method,
   * () => value)` in the official client), wherever the connection is. Rejects with a ClientResultError
   * when the client's handler threw or had none (the client's text), the connection does not exist or
   * ends first, its node dies, or the hub's `clientResultTimeoutMs` passes.
   */
  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T>;
  /** {@link invoke} with a timeout or an abort signal of its own. */
  invokeWith<T = unknown>(options: InvokeOptions, method: string, ...args: unknown[]): Promise<T>;
}

/** The targets a hub can send to (ASP.NET Core's IHubClients). */
export interface HubClients {
  readonly all: ClientProxy;
  allExcept(connectionIds: readonly string[]): ClientProxy;
  /** The connection that made the current call. Only inside hub methods and lifecycle hooks. */
  readonly caller: SingleClientProxy;
  /** Everyone but the caller. Only inside hub methods and lifecycle hooks. */
  readonly others: ClientProxy;
  client(connectionId: string): SingleClientProxy;
  clients(connectionIds: readonly string[]): ClientProxy;
  group(name: string): ClientProxy;
  groups(names: readonly string[]): ClientProxy;
  groupExcept(name: string, excludedConnectionIds: readonly string[]): ClientProxy;
  /** The group's members but the caller. Only inside hub methods and lifecycle hooks. */
  othersInGroup(name: string): ClientProxy;
  /** Every connection of a user (on any node). */
  user(userId: string): ClientProxy;
  users(userIds: readonly string[]): ClientProxy;
}

/** Group membership, cluster-wide (ASP.NET Core's IGroupManager). */
export interface GroupManager {
  /**
   * Adds a connection (on any node) to a group. Resolves once a send to the group reaches it.
   * @throws UnknownConnectionError when no connection has that id.
   */
  add(connectionId: string, group: string): Promise<void>;
  /** Removes a connection from a group; removing a non-member does nothing. */
  remove(connectionId: string, group: string): Promise<void>;
}

/** How the proxies reach clients: the backplane for everything, a direct write for the caller. */
export interface ClientSink {
  publish(target: SendTarget, message: BackplaneMessage): Promise<PublishResult>;
  /** Asks one connection of the hub for a result (client-results.ts). */
  invoke(connectionId: string, message: BackplaneMessage, options: InvokeOptions): Promise<unknown>;
}

/** The caller, when there is one: its id and a direct write to its own connection. */
export interface CallerSink {
  connectionId: string;
  send(message: BackplaneMessage): void;
}

/** Builds the proxies of one hub, for one caller or for code outside any call (no caller). */
export class HubClientsImpl implements HubClients {
  constructor(
    private readonly hub: string,
    private readonly sink: ClientSink,
    private readonly callerSink?: CallerSink,
  ) {}

  get all(): ClientProxy {
    return this.to({ kind: "all", hub: this.hub });
  }

  allExcept(connectionIds: readonly string[]): ClientProxy {
    return this.to({ kind: "all", hub: this.hub, excludedConnectionIds: [...connectionIds] });
  }

  get caller(): SingleClientProxy {
    return new CallerProxy(this.sink, this.hub, this.requireCaller("caller"));
  }

  get others(): ClientProxy {
    return this.allExcept([this.requireCaller("others").connectionId]);
  }

  client(connectionId: string): SingleClientProxy {
    return new SingleProxy(this.sink, this.hub, connectionId);
  }

  clients(connectionIds: readonly string[]): ClientProxy {
    return this.to({ kind: "connections", hub: this.hub, connectionIds: [...connectionIds] });
  }

  group(name: string): ClientProxy {
    return this.groups([name]);
  }

  groups(names: readonly string[]): ClientProxy {
    return this.to({ kind: "groups", hub: this.hub, groups: [...names] });
  }

  groupExcept(name: string, excludedConnectionIds: readonly string[]): ClientProxy {
    return this.to({
      kind: "groups",
      hub: this.hub,
      groups: [name],
      excludedConnectionIds: [...excludedConnectionIds],
    });
  }

  othersInGroup(name: string): ClientProxy {
    return this.groupExcept(name, [this.requireCaller("othersInGroup").connectionId]);
  }

  user(userId: string): ClientProxy {
    return this.users([userId]);
  }

  users(userIds: readonly string[]): ClientProxy {
    return this.to({ kind: "users", hub: this.hub, userIds: [...userIds] });
  }

  private to(target: SendTarget): ClientProxy {
    return new TargetProxy(this.sink, target);
  }

  private requireCaller(proxy: string): CallerSink {
    if (!this.callerSink) {
      throw new Error(
        `clients.${proxy} is only available inside a hub method or lifecycle hook (there is no caller here).`,
      );
    }
    return this.callerSink;
  }
}

/** A proxy for one send target: a class, so each `clients.user(…)` makes no closure. */
class TargetProxy implements ClientProxy {
  constructor(
    protected readonly sink: ClientSink,
    private readonly target: SendTarget,
  ) {}

  send(method: string, ...args: unknown[]): Promise<PublishResult> {
    return this.sink.publish(this.target, { target: method, arguments: args });
  }
}

/** One connection's proxy: a send target of one id, and client results. */
class SingleProxy extends TargetProxy implements SingleClientProxy {
  constructor(
    sink: ClientSink,
    hub: string,
    private readonly connectionId: string,
  ) {
    super(sink, { kind: "connections", hub, connectionIds: [connectionId] });
  }

  invoke<T = unknown>(method: string, ...args: unknown[]): Promise<T> {
    return this.invokeWith<T>({}, method, ...args);
  }

  invokeWith<T = unknown>(options: InvokeOptions, method: string, ...args: unknown[]): Promise<T> {
    return this.sink.invoke(this.connectionId, { target: method, arguments: args }, options) as Promise<T>;
  }
}

/** The caller's proxy: its sends are written straight to its connection, with no backplane in between. */
class CallerProxy extends SingleProxy {
  constructor(
    sink: ClientSink,
    hub: string,
    private readonly caller: CallerSink,
  ) {
    super(sink, hub, caller.connectionId);
  }

  override async send(method: string, ...args: unknown[]): Promise<PublishResult> {
    this.caller.send({ target: method, arguments: args });
    return { connections: 1, nodes: 1 };
  }
}
