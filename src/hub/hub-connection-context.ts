import type { IncomingHttpHeaders } from "node:http";
import type { ConnectionRequest, TransportName } from "../transport/transport-connection.js";

/** What a hub method knows of the connection that called it. */
export interface HubCallerContext {
  /** The public id other code uses to address this connection (`clients.client(id)`). */
  readonly connectionId: string;
  /** The user of the connection, as the user id provider said; undefined for anonymous connections. */
  readonly userId: string | undefined;
  /** The id of the node (server process) holding this connection. */
  readonly nodeId: string;
  /** The hub's path, e.g. "/hubs/chat". */
  readonly hub: string;
  /** Headers of the request that opened the transport. */
  readonly headers: IncomingHttpHeaders;
  /** Query parameters of that request. */
  readonly query: URLSearchParams;
  /** Claims or other data an authentication hook attached to the connection. */
  readonly auth: Readonly<Record<string, unknown>> | undefined;
  /** The transport in use. */
  readonly transport: TransportName;
  /** The hub protocol agreed at the handshake ("json" or "messagepack"). */
  readonly protocol: string;
  /** State kept for the life of the connection, shared by every invocation and both lifecycle hooks. */
  readonly items: Map<string, unknown>;
  /** Aborted when the connection ends. */
  readonly signal: AbortSignal;
  /**
   * Fields added to every log event about this connection (for example the identifiers it registered),
   * so a failed delivery can be traced to whom it was for. Never put secrets here.
   */
  readonly logFields: Record<string, unknown>;
  /** Ends the connection (the client sees a Close message, with `error` if given). */
  abort(error?: string): void;
}

/** What the caller context reads from its connection. */
interface ContextSource {
  readonly connectionId: string;
  readonly hub: string;
  readonly nodeId: string;
  readonly transport: { readonly transport: TransportName; readonly request: ConnectionRequest };
  readonly protocol: { readonly name: string };
  readonly items: Map<string, unknown>;
  readonly signal: AbortSignal;
  readonly logFields: Record<string, unknown>;
  close(error?: string): void;
}

/**
 * The {@link HubCallerContext} of one connection. It reads each member from the connection when asked, so
 * it holds one reference instead of a copy of every field, and makes nothing (the signal, `items`) until
 * a hub reads it.
 */
export class ConnectionCallerContext implements HubCallerContext {
  readonly #connection: ContextSource;

  constructor(connection: ContextSource) {
    this.#connection = connection;
  }

  get connectionId(): string {
    return this.#connection.connectionId;
  }
  get userId(): string | undefined {
    return this.#connection.transport.request.userId;
  }
  get nodeId(): string {
    return this.#connection.nodeId;
  }
  get hub(): string {
    return this.#connection.hub;
  }
  get headers(): IncomingHttpHeaders {
    return this.#connection.transport.request.headers;
  }
  get query(): URLSearchParams {
    return this.#connection.transport.request.query;
  }
  get auth(): Readonly<Record<string, unknown>> | undefined {
    return this.#connection.transport.request.auth;
  }
  get transport(): TransportName {
    return this.#connection.transport.transport;
  }
  get protocol(): string {
    return this.#connection.protocol.name;
  }
  get items(): Map<string, unknown> {
    return this.#connection.items;
  }
  get signal(): AbortSignal {
    return this.#connection.signal;
  }
  get logFields(): Record<string, unknown> {
    return this.#connection.logFields;
  }

  /** A function of its own, so it still works when taken off the context (`const { abort } = context`). */
  get abort(): (error?: string) => void {
    const connection = this.#connection;
    return (error?: string) =>
      connection.close(error === undefined ? undefined : `Connection closed with an error. ${error}`);
  }

  /** The members as data, for logging (the getters live on the prototype, which JSON does not read). */
  toJSON(): Record<string, unknown> {
    const { connectionId, userId, nodeId, hub, headers, query, auth, transport, protocol, logFields } = this;
    return { connectionId, userId, nodeId, hub, headers, query, auth, transport, protocol, logFields };
  }
}
