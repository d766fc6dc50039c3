import type { HubClients, GroupManager } from "./clients.js";
import type { HubCallerContext } from "./hub-connection-context.js";
import type { HubPresence } from "./hub-presence.js";
import { invocationCancellation, type InvocationCancellation } from "./invocation-cancellation.js";

/**
 * The base class of a hub. Clients invoke its public methods by name (case-insensitively); a method may
 * return a value or a promise (sent back as the result), or be an async generator / return an async iterable
 * (a server-to-client stream). Parameters after the client's arguments receive the client's upload streams
 * as async iterables.
 *
 * A new instance serves each invocation, so keep per-connection state in `this.context.items`.
 *
 * @example
 * class ChatHub extends Hub {
 *   async send(message: string) {
 *     await this.clients.all.send("message", this.context.userId, message);
 *   }
 * }
 */
/**
 * Where a hub instance keeps a signal of its own. A symbol, not a private field: the accessor below also
 * serves hubs given as plain objects, which have no private fields.
 */
const ownSignal = Symbol("signal");
type SignalHolder = { [ownSignal]?: AbortSignal; [invocationCancellation]?: InvocationCancellation };

export abstract class Hub {
  /** The connection that made this call. */
  context!: HubCallerContext;
  /** Send to the caller, to others, to groups, to users or to everyone, on any node. */
  clients!: HubClients;
  /** Add or remove connections (on any node) to or from groups. */
  groups!: GroupManager;
  /** Who is connected to this hub, on any node: users online, group members, a connection's groups, counts. */
  presence!: HubPresence;
  /**
   * Aborted when this invocation should stop: the client cancelled its stream, or the connection closed.
   * Streaming methods should pass it to whatever they await. In the lifecycle hooks, and in methods the
   * client invoked without waiting for a result, it is the connection's own (aborted when it ends).
   */
  get signal(): AbortSignal {
    // Made or fetched only when asked: an AbortSignal costs ~1 KB, and most methods never read it.
    const holder = this as SignalHolder;
    return holder[ownSignal] ?? holder[invocationCancellation]?.signal ?? this.context.signal;
  }
  /** A signal set here (by the dispatcher for one invocation, or by the hub itself) is the instance's own. */
  set signal(value: AbortSignal) {
    (this as SignalHolder)[ownSignal] = value;
  }

  /** Called once a client has connected and completed its handshake. */
  onConnected?(): void | Promise<void>;
  /** Called once when the connection ends; `error` is set when it ended abnormally. */
  onDisconnected?(error?: Error): void | Promise<void>;
}

/** A hub given as a class (a subclass of {@link Hub}, or any class with methods) or as a plain object of methods. */
export type HubDefinition = (new () => object) | Record<string, unknown>;
