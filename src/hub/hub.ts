import type { HubClients, GroupManager } from "./clients.js";
import type { HubCallerContext } from "./hub-connection-context.js";

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
export abstract class Hub {
  /** The connection that made this call. */
  context!: HubCallerContext;
  /** Send to the caller, to others, to groups, to users or to everyone, on any node. */
  clients!: HubClients;
  /** Add or remove connections (on any node) to or from groups. */
  groups!: GroupManager;
  /**
   * Aborted when this invocation should stop: the client cancelled its stream, or the connection closed.
   * Streaming methods should pass it to whatever they await.
   */
  signal!: AbortSignal;

  /** Called once a client has connected and completed its handshake. */
  onConnected?(): void | Promise<void>;
  /** Called once when the connection ends; `error` is set when it ended abnormally. */
  onDisconnected?(error?: Error): void | Promise<void>;
}

/** A hub given as a class (a subclass of {@link Hub}, or any class with methods) or as a plain object of methods. */
export type HubDefinition = (new () => object) | Record<string, unknown>;
