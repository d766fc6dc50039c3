import type { IncomingHttpHeaders } from "node:http";
import type { TransportName } from "../transport/transport-connection.js";

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
