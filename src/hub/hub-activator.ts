import { MessageType } from "../protocol/messages.js";
import { HubClientsImpl, type CallerSink, type ClientSink, type GroupManager } from "./clients.js";
import type { HubConnection } from "./hub-connection.js";
import { Hub, type HubDefinition } from "./hub.js";
import type { HubPresence } from "./hub-presence.js";
import { invocationCancellation, type InvocationCancellation } from "./invocation-cancellation.js";

/** How hub instances reach clients and groups: the endpoint's backplane, behind these. */
export interface ActivatorSinks extends ClientSink {
  readonly groups: GroupManager;
  readonly presence: HubPresence;
}

/**
 * Makes the hub instance that serves one call: a fresh one each time (ASP.NET Core's hub activator), with
 * the caller's context, clients, groups and abort signal.
 */
export class HubActivator {
  /** What a hub given as a plain object is made from: the object, with Hub's `signal` accessor in front. */
  private readonly objectHubPrototype: object | undefined;
  /** Whether hub instances read `signal` from their context when none was set (Hub subclasses, objects). */
  private readonly signalFromContext: boolean;

  constructor(
    private readonly hub: string,
    private readonly definition: HubDefinition,
    private readonly sinks: ActivatorSinks,
  ) {
    const signalAccessor = Object.getOwnPropertyDescriptor(Hub.prototype, "signal")!;
    this.objectHubPrototype =
      typeof definition === "function" ? undefined : Object.create(definition, { signal: signalAccessor });
    this.signalFromContext = typeof definition !== "function" || definition.prototype instanceof Hub;
  }

  /**
   * A hub instance for one call. Hub's `signal` accessor makes or fetches the signal only when read: the
   * invocation's, or without one (the lifecycle hooks) the connection's. Most methods never read it, and
   * an AbortSignal is the largest thing an idle connection would hold.
   */
  activate(connection: HubConnection, cancellation?: InvocationCancellation): Record<string, unknown> {
    const hub = (
      typeof this.definition === "function"
        ? new this.definition()
        : Object.create(this.objectHubPrototype as object)
    ) as Record<string, unknown>;
    const caller: CallerSink = {
      connectionId: connection.connectionId,
      send: (message) => {
        connection.write({
          type: MessageType.Invocation,
          target: message.target,
          arguments: message.arguments,
        });
      },
    };
    hub.context = connection.context;
    hub.clients = new HubClientsImpl(this.hub, this.sinks, caller);
    hub.groups = this.sinks.groups;
    hub.presence = this.sinks.presence;
    if (!this.signalFromContext) {
      hub.signal = cancellation?.signal ?? connection.signal; // a class without Hub's accessor
    } else if (cancellation) {
      (hub as { [invocationCancellation]?: InvocationCancellation })[invocationCancellation] = cancellation;
    }
    return hub;
  }
}
