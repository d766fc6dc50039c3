/**
 * The requests of the Server-Sent Events and long polling transports, once routed to the node that holds
 * their connection: the GET that starts or polls one, the POSTs that carry the client's bytes, the DELETE.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { BaseConnection, ConnectionInit } from "./base-connection.js";
import { isSameUser, type ConnectionEntry, type ConnectionRegistry } from "./connection-registry.js";
import type { AuthenticatedUser, ResolvedEndpointOptions } from "./endpoint-options.js";
import { BodyTooLargeError, queryValue, readBody, writeText } from "./http-utils.js";
import { LongPollingConnection } from "./long-polling-transport.js";
import {
  BODY_TOO_LARGE,
  CHANGE_TRANSPORT,
  ID_REQUIRED,
  NO_CONNECTION,
  NO_DELETE,
  NO_POST_ON_WEBSOCKET,
  notSupported,
  SEND_IN_PROGRESS,
} from "./responses.js";
import { ServerSentEventsConnection } from "./server-sent-events-transport.js";
import { transportLog } from "./transport.log.js";
import type { TransportName } from "./transport-connection.js";

/** A request routed to an endpoint: negotiate or the connection path, with its query parsed. */
export type Route = { kind: "negotiate" | "connection"; pathname: string; query: URLSearchParams };
/** Refuses a request: logs it and writes the status (and body). */
export type Answer = (status: number, body?: string) => void;

/** What the HTTP transports' requests need from the endpoint that owns the connections. */
export interface HttpTransportHost {
  readonly options: ResolvedEndpointOptions;
  readonly registry: ConnectionRegistry;
  /** Who made the request, or the status that refuses it. */
  authenticate(req: IncomingMessage): Promise<AuthenticatedUser | 401 | 403>;
  /** What a connection started for `entry` on one of these transports is made from. */
  connectionInit(
    entry: ConnectionEntry,
    transport: TransportName,
    req: IncomingMessage,
    route: Route,
    user: AuthenticatedUser,
  ): ConnectionInit;
  /** Tracks a new connection until it finishes. */
  adopt(entry: ConnectionEntry | undefined, connection: BaseConnection): void;
}

/**
 * The requests of the two HTTP transports, for connections negotiated on this node: the event-stream GET,
 * every long-polling GET (the first one starts the connection), the POSTs that carry the client's bytes,
 * and the DELETE that stops long polling. Forwarding to another node happens before these are called.
 */
export class HttpTransportRequests {
  /** Connections with a POST being read: the official client never overlaps sends, so we refuse overlaps. */
  private readonly sending = new Set<BaseConnection>();

  constructor(private readonly host: HttpTransportHost) {}

  private get log() {
    return this.host.options.logger;
  }

  /** The event-stream GET, and every long polling GET (the first one starts the connection). */
  async startOrPoll(
    transport: "ServerSentEvents" | "LongPolling",
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    reject: Answer,
  ): Promise<void> {
    const { options, registry } = this.host;
    if (!options.transports.includes(transport)) return reject(404, notSupported(transport));
    const id = queryValue(route.query, "id");
    if (!id) return reject(400, ID_REQUIRED);
    const entry = registry.get(id);
    if (entry === undefined) return reject(404, NO_CONNECTION);
    if (entry.state === "closed") {
      // A long polling connection that ended drains its buffer, then answers 204.
      if (entry.connection instanceof LongPollingConnection && transport === "LongPolling") {
        return entry.connection.poll(res);
      }
      return reject(404, NO_CONNECTION);
    }
    if (entry.state !== "pending") {
      if (entry.transport !== transport) return reject(400, CHANGE_TRANSPORT);
      if (entry.connection instanceof LongPollingConnection) return entry.connection.poll(res);
      return reject(409);
    }

    const user = await this.host.authenticate(req);
    if (typeof user === "number") return reject(user);
    if (!isSameUser(user.userId, entry.userId)) return reject(404, NO_CONNECTION);
    // While we waited, the entry may have expired, or another request may have started it.
    if (registry.get(id) !== entry) return reject(404, NO_CONNECTION);
    if (entry.state !== "pending") return reject(409);

    registry.claim(entry, "active", transport);
    const init = this.host.connectionInit(entry, transport, req, route, user);
    const connection =
      transport === "LongPolling"
        ? new LongPollingConnection(init, {
            pollTimeoutMs: options.longPollingTimeoutMs,
            disconnectTimeoutMs: options.disconnectTimeoutMs,
          })
        : new ServerSentEventsConnection(init, res);
    this.host.adopt(entry, connection);
    // The stream opens first so the handler may send from inside onConnected; if onConnected then
    // throws, the client sees the stream end. A first poll is answered after onConnected succeeded.
    if (connection instanceof ServerSentEventsConnection) connection.open();
    try {
      connection.start(options.handler);
    } catch {
      return writeText(res, 500);
    }
    if (connection instanceof LongPollingConnection) connection.answerFirstPoll(res);
  }

  /** A POST: bytes from an SSE or long polling client. */
  async receive(req: IncomingMessage, res: ServerResponse, route: Route, reject: Answer): Promise<void> {
    const id = queryValue(route.query, "id");
    if (!id) return reject(400, ID_REQUIRED);
    const entry = this.host.registry.get(id);
    if (entry?.transport === "WebSockets" && entry.state !== "closed") {
      return reject(405, NO_POST_ON_WEBSOCKET);
    }
    const connection = entry?.state === "active" ? entry.connection : undefined;
    if (connection === undefined) return reject(404, NO_CONNECTION);
    // The official client never overlaps sends; refusing overlaps keeps the bytes in order.
    if (this.sending.has(connection)) {
      transportLog.concurrentSend(this.log, connection.connectionId);
      return reject(409, SEND_IN_PROGRESS);
    }
    this.sending.add(connection);
    let body: Buffer;
    try {
      body = await readBody(req, this.host.options.maxRequestBodyBytes);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        transportLog.requestBodyTooLarge(this.log, connection.connectionId, error.limit);
        transportLog.requestRejected(this.log, "POST", 413, BODY_TOO_LARGE);
        return writeText(res, 413, BODY_TOO_LARGE, { Connection: "close" });
      }
      return reject(400, "The request body could not be read.");
    } finally {
      this.sending.delete(connection);
    }
    if (!connection.isOpen) return reject(404, NO_CONNECTION);
    // The official clients mark a binary send (an ArrayBuffer) so, and text as text/plain.
    const binary = req.headers["content-type"]?.startsWith("application/octet-stream") === true;
    connection.receive(body, binary ? "Binary" : "Text");
    writeText(res, 200);
  }

  /** DELETE: the long polling client stops. */
  stopLongPolling(route: Route, res: ServerResponse, reject: Answer): void {
    const id = queryValue(route.query, "id");
    if (!id) return reject(400, ID_REQUIRED);
    const entry = this.host.registry.get(id);
    if (entry === undefined || entry.state === "closed") return reject(404, NO_CONNECTION);
    if (!(entry.connection instanceof LongPollingConnection)) return reject(400, NO_DELETE);
    entry.connection.stopByClient();
    writeText(res, 202);
  }
}
