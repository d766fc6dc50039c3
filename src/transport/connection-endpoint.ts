import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type Server as WebSocketServerOf } from "ws";
import type { BaseConnection, ConnectionInit, SharedConnectionSettings } from "./base-connection.js";
import { ConnectionRegistry, isSameUser, type ConnectionEntry } from "./connection-registry.js";
import {
  isTokenFresh,
  newConnectionId,
  tokenHomeNode,
  tokenIssuedAtMs,
  verifyConnectionToken,
} from "./connection-token.js";
import {
  resolveEndpointOptions,
  type AuthenticatedUser,
  type ConnectionEndpointOptions,
  type ResolvedEndpointOptions,
} from "./endpoint-options.js";
import {
  abortHandshake,
  connectionRequest,
  queryValue,
  splitUrl,
  writeJson,
  writeText,
} from "./http-utils.js";
import { FORWARDED_HEADER, RequestForwarder } from "./forwarding.js";
import { HttpTransportRequests, type Answer, type Route } from "./http-transport-requests.js";
import { negotiateConnection, parseNegotiateVersion, wantsStatefulReconnect } from "./negotiate.js";
import { CHANGE_TRANSPORT, NO_CONNECTION, notSupported } from "./responses.js";
import { transportLog } from "./transport.log.js";
import type { ConnectionCallbacks, ResumeDecision, TransportName } from "./transport-connection.js";
import { ServerWebSocket, WebSocketConnection } from "./websocket-transport.js";
import { contextOfRequest, inSpan, SpanKind } from "../tracing.js";

/**
 * One SignalR connection endpoint (`{path}` and `{path}/negotiate`): negotiate, the WebSocket upgrade,
 * and routing for the HTTP transports' requests (http-transport-requests.ts). It turns each client
 * connection into a {@link TransportConnection} for the handler and knows nothing of hubs. It does not
 * answer CORS preflights (the server layer does).
 *
 * Clustering: connection tokens (negotiate version 1) are signed, so a WebSocket upgrade may reach any
 * node that shares the token secret, even one that never saw the negotiate. A Server-Sent Events or
 * long-polling connection lives on the node that negotiated it: with `forwarding`, its token names that
 * node, and its requests that reach another node are forwarded there, so no balancer needs sticky
 * sessions. Without it, and for negotiate version 0 (no token), they must reach that node (others 404).
 *
 * Stateful reconnect: when negotiate agreed to it, a client whose WebSocket dropped comes back with the
 * same token (on any node, behind a balancer) and the handler's `resume` decides: go on with the same
 * connection, treat it as the first start of a connection negotiated elsewhere, or refuse with 404.
 *
 * `authenticate` runs on negotiate and on the request that starts a connection; its user id must be the
 * same on both (a token is bound to its user). The `id` query parameter (the token) is not passed on in
 * {@link ConnectionRequest.query}.
 */
export class ConnectionEndpoint {
  /** The base path as given. */
  readonly path: string;
  private readonly options: ResolvedEndpointOptions;
  private readonly basePath: string;
  private readonly basePathLower: string;
  private readonly registry = new ConnectionRegistry();
  /** Connections whose `onClose` has not run yet, with their registry entry (none without negotiation). */
  private readonly live = new Map<BaseConnection, ConnectionEntry | undefined>();
  private readonly httpTransports: HttpTransportRequests;
  private readonly webSockets: WebSocketServerOf<typeof ServerWebSocket>;
  private readonly shared: SharedConnectionSettings;
  private readonly forwarder: RequestForwarder | undefined;
  private closing = false;

  /** @throws RangeError or TypeError for invalid options. */
  constructor(options: ConnectionEndpointOptions) {
    this.options = resolveEndpointOptions(options);
    this.path = this.options.path;
    this.basePath = this.path.endsWith("/") ? this.path.slice(0, -1) : this.path;
    this.basePathLower = this.basePath.toLowerCase();
    this.webSockets = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: this.options.maxWebSocketMessageBytes,
      WebSocket: ServerWebSocket,
      autoPong: false, // ServerWebSocket answers pings itself
    });
    const forwarding = this.options.forwarding;
    this.forwarder = forwarding && new RequestForwarder(forwarding.nodeId);
    this.shared = {
      logger: this.options.logger,
      maxBufferedBytes: this.options.maxBufferedBytes,
      // The owner retires a connection's entry when it ends, and forgets the connection after its onClose.
      owner: {
        connectionEnded: (connection) => {
          const entry = this.live.get(connection);
          // A resumed connection's entry already belongs to its new transport.
          if (entry && entry.connection === connection) this.retire(entry);
        },
        connectionFinished: (connection) => {
          this.live.delete(connection);
        },
      },
    };
    this.httpTransports = new HttpTransportRequests({
      options: this.options,
      registry: this.registry,
      authenticate: (req) => this.authenticate(req),
      // The official clients resume WebSockets only: these transports never come back for their connection.
      connectionInit: (entry, transport, req, route, user) =>
        this.connectionInit(entry.connectionId, transport, req, route, user, entry, false),
      adopt: (entry, connection) => this.adopt(entry, connection),
    });
  }

  /**
   * Serves a plain HTTP request if its path is this endpoint's. Never throws; errors become 500s.
   * @returns false when the path is not this endpoint's (the request is left untouched).
   */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const route = this.route(req.url);
    if (route === undefined) return false;
    const work =
      route.kind === "negotiate"
        ? inSpan(
            "SignalR negotiate",
            { kind: SpanKind.SERVER, attributes: { "url.path": route.pathname } },
            contextOfRequest(req.headers),
            () => this.negotiate(req, res, route),
          )
        : this.dispatch(req, res, route);
    work.catch((error: unknown) => {
      transportLog.requestFailed(this.log, req.method ?? "", error);
      if (res.headersSent) res.destroy();
      else writeText(res, 500);
    });
    return true;
  }

  /**
   * Serves a WebSocket upgrade if its path is this endpoint's. Never throws; errors become 500s.
   * @returns false when the path is not this endpoint's (the socket is left untouched).
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const route = this.route(req.url);
    if (route?.kind !== "connection") return false;
    // Node leaves upgrade sockets without an error listener; an unhandled 'error' would crash the process.
    // (Until the upgrade completes: ws has its own listener then.)
    socket.on("error", this.onUpgradeSocketError);
    this.upgrade(req, socket, head, route).catch((error: unknown) => {
      transportLog.requestFailed(this.log, "GET", error);
      abortHandshake(socket, 500);
    });
    return true;
  }

  /** Refuses new connections (negotiate and WebSocket upgrades, resumes too) with 503; the others go on. */
  stopAccepting(): void {
    this.closing = true;
    for (const entry of this.registry.all()) if (entry.state === "pending") this.registry.delete(entry);
  }

  /** Ends every connection (their `onClose` has run when this settles) and refuses new ones with 503. */
  async close(): Promise<void> {
    this.closing = true;
    const finished = [...this.live.keys()].map((connection) => {
      connection.close();
      return connection.finished;
    });
    for (const entry of this.registry.all()) if (entry.state === "pending") this.registry.delete(entry);
    this.webSockets.close();
    this.forwarder?.close();
    await Promise.all(finished);
  }

  /** Shared by every upgrade socket, not a closure per socket. */
  private readonly onUpgradeSocketError = (error: Error): void =>
    transportLog.webSocketError(this.log, "", error);

  private get log() {
    return this.options.logger;
  }

  /** Paths match case-insensitively, as ASP.NET Core's routes do (`/hubs/Chat` is `/hubs/chat`). */
  private route(url: string | undefined): Route | undefined {
    const { pathname, query } = splitUrl(url);
    const path = (pathname.endsWith("/") ? pathname.slice(0, -1) : pathname).toLowerCase();
    if (path === this.basePathLower) return { kind: "connection", pathname, query };
    if (path === `${this.basePathLower}/negotiate`) return { kind: "negotiate", pathname, query };
    return undefined;
  }

  private rejecter(method: string, reply: (status: number, body: string) => void): Answer {
    return (status, body = "") => {
      transportLog.requestRejected(this.log, method, status, body);
      reply(status, body);
    };
  }

  /** Who made the request, or the status that refuses it: 401 (not authenticated), 403 (not authorized). */
  private async authenticate(req: IncomingMessage): Promise<AuthenticatedUser | 401 | 403> {
    const result = this.options.authenticate ? await this.options.authenticate(req) : undefined;
    if (result === "unauthorized") {
      transportLog.unauthorized(this.log, req.method ?? "");
      return 401;
    }
    const user = result ?? {};
    const expiresAt = user.expiresAt as unknown;
    if (expiresAt !== undefined && !(expiresAt instanceof Date && Number.isFinite(expiresAt.getTime()))) {
      throw new TypeError("The authenticate hook returned an expiresAt that is not a valid Date.");
    }
    if (this.options.authorize && !this.options.authorize(user)) {
      const anonymous = user.userId === undefined && user.claims === undefined;
      transportLog.forbidden(this.log, req.method ?? "", user.userId);
      return anonymous ? 401 : 403;
    }
    return user;
  }

  private async negotiate(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const reject = this.rejecter("POST", (status, body) => writeText(res, status, body, { Allow: "POST" }));
    if (req.method !== "POST") return reject(405);
    if (this.closing) return reject(503);
    const user = await this.authenticate(req);
    if (typeof user === "number") return reject(user);
    const version = parseNegotiateVersion(
      queryValue(route.query, "negotiateVersion"),
      this.options.minimumNegotiateVersion,
    );
    if ("error" in version) return writeJson(res, 200, { error: version.error });

    const stateful =
      this.options.allowStatefulReconnects &&
      wantsStatefulReconnect(queryValue(route.query, "useStatefulReconnect"));
    const { response, key, resumable } = await negotiateConnection(version.version, user.userId, stateful, {
      ...this.options,
      homeNode: this.options.forwarding?.nodeId,
    });
    const pending = {
      key,
      connectionId: response.connectionId,
      userId: user.userId,
      resumable,
    };
    this.registry.add({ ...pending, state: "pending" }, this.options.disconnectTimeoutMs);
    transportLog.negotiated(this.log, response.connectionId, response.negotiateVersion);
    writeJson(res, 200, response);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const method = req.method ?? "";
    const reject = this.rejecter(method, (status, body) => writeText(res, status, body));
    const home = this.homeElsewhere(req, route);
    if (home !== undefined) return this.forward(req, res, home, reject);
    switch (method) {
      case "GET":
        // A WebSocket upgrade that reached the request handler: the server did not route it to handleUpgrade.
        if (req.headers.upgrade?.toLowerCase() === "websocket") {
          return reject(400, "Expected a WebSocket upgrade request.");
        }
        if ((req.headers.accept ?? "").includes("text/event-stream")) {
          return this.httpTransports.startOrPoll("ServerSentEvents", req, res, route, reject);
        }
        return this.httpTransports.startOrPoll("LongPolling", req, res, route, reject);
      case "POST":
        return this.httpTransports.receive(req, res, route, reject);
      case "DELETE":
        return this.httpTransports.stopLongPolling(route, res, reject);
      default:
        return this.rejecter(method, (status) => writeText(res, status, "", { Allow: "GET, POST, DELETE" }))(
          405,
        );
    }
  }

  /**
   * The home node of a request's connection when it is another node's: the token names a home, this node
   * does not know the token, and no node forwarded the request here already (one hop at most).
   */
  private homeElsewhere(req: IncomingMessage, route: Route): string | undefined {
    const forwarding = this.options.forwarding;
    if (forwarding === undefined || req.headers[FORWARDED_HEADER] !== undefined) return undefined;
    const id = queryValue(route.query, "id");
    if (!id || this.registry.get(id) !== undefined) return undefined;
    const home = tokenHomeNode(id);
    return home === forwarding.nodeId ? undefined : home;
  }

  /** Forwards a send, poll, event stream or DELETE to the connection's home node; 404 when it is gone. */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    home: string,
    reject: Answer,
  ): Promise<void> {
    const url = await this.options.forwarding!.nodeUrl(home);
    if (res.destroyed || req.destroyed) return; // the client left while we looked the node up
    if (url === undefined || this.forwarder === undefined) return reject(404, NO_CONNECTION);
    transportLog.forwarded(this.log, req.method ?? "", home);
    this.forwarder.forward(req, res, url, (error) => {
      transportLog.forwardFailed(this.log, req.method ?? "", home, error);
      reject(404, NO_CONNECTION);
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route): Promise<void> {
    const reject = this.rejecter("GET", (status, body) => abortHandshake(socket, status, body));
    if (req.method !== "GET") return reject(405);
    if (req.headers.upgrade?.toLowerCase() !== "websocket") {
      return reject(400, "Expected a WebSocket upgrade.");
    }
    if (!this.options.transports.includes("WebSockets")) return reject(404, notSupported("WebSockets"));
    if (this.closing) return reject(503);
    const user = await this.authenticate(req);
    if (typeof user === "number") return reject(user);

    // An empty id counts as none, as in ASP.NET Core.
    const id = queryValue(route.query, "id") || undefined;
    if (id === undefined) {
      // The client skipped negotiation: the connection is made up here and has no token.
      return this.accept(req, socket, head, route, user, newConnectionId(), undefined, undefined);
    }
    const known = this.registry.get(id);
    if (known?.state === "pending" && !known.resumable) {
      if (!isSameUser(user.userId, known.userId)) return reject(404, NO_CONNECTION);
      this.registry.claim(known, "starting", "WebSockets");
      return this.accept(req, socket, head, route, user, known.connectionId, known, undefined);
    }
    if (known !== undefined && !known.resumable) {
      if (known.state === "closed") return reject(404, NO_CONNECTION);
      return known.transport === "WebSockets" ? reject(409) : reject(400, CHANGE_TRANSPORT);
    }
    if (known?.state === "starting") return reject(409);
    if (known?.transport !== undefined && known.transport !== "WebSockets")
      return reject(400, CHANGE_TRANSPORT);

    // A signed token for this user: fresh enough to start a connection here, or of a connection that
    // agreed to stateful reconnect and may be resumed. Even where it was negotiated (the entry is still
    // pending here), a resumable token may belong to a connection that started, and lives, on another node.
    const verified = verifyConnectionToken(id, await this.options.tokenSecret(), user.userId);
    if (!verified) return reject(404, NO_CONNECTION);
    const tokenFresh = isTokenFresh(verified.issuedAtMs, this.options.tokenLifetimeMs);
    const resumable = verified.resumable === true && this.options.allowStatefulReconnects;
    const decision: ResumeDecision =
      resumable && this.options.handler.resume
        ? await this.options.handler.resume({
            connectionId: verified.connectionId,
            tokenFresh,
            request: connectionRequest(req, route.pathname, route.query, user, false),
          })
        : { kind: "new" };
    if (decision.kind === "refuse") {
      transportLog.resumeRefused(this.log, verified.connectionId, decision.reason);
      return reject(404, NO_CONNECTION);
    }
    // A new connection needs a fresh token this node has not seen start yet.
    const startable = known === undefined ? tokenFresh : known.state === "pending";
    if (decision.kind === "new" && !startable) return reject(404, NO_CONNECTION);
    // While we waited, another request may have taken the token.
    const current = this.registry.get(id);
    // (A resume the handler accepted but never attached stays in its resume window: nothing to undo.)
    if (current !== known || current?.state === "starting") return reject(409);
    let entry = known;
    if (entry === undefined) {
      entry = this.registry.add(
        {
          key: id,
          connectionId: verified.connectionId,
          userId: user.userId,
          resumable,
          state: "starting",
        },
        this.options.disconnectTimeoutMs,
      );
    }
    this.registry.claim(entry, "starting", "WebSockets");
    const attach = decision.kind === "resume" ? decision.attach : undefined;
    return this.accept(req, socket, head, route, user, verified.connectionId, entry, attach);
  }

  /**
   * Completes a WebSocket upgrade and hands the connection to the handler: as a new connection, or to
   * `attach` when it resumes one.
   */
  private accept(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    route: Route,
    user: AuthenticatedUser,
    connectionId: string,
    entry: ConnectionEntry | undefined,
    attach: ((connection: WebSocketConnection) => ConnectionCallbacks) | undefined,
  ): void {
    if (socket.destroyed) {
      if (entry) this.retire(entry);
      return;
    }
    const upgrade = this.retireUnlessUpgraded(socket, entry);
    this.webSockets.handleUpgrade(req, socket, head, (webSocket) => {
      upgrade.done();
      // ws listens for the socket's errors from here on (the close that follows reports the loss): two
      // listeners would cost an array for the life of the connection.
      socket.removeListener("error", this.onUpgradeSocketError);
      const stateful = entry?.resumable ?? false;
      const init = this.connectionInit(connectionId, "WebSockets", req, route, user, entry, stateful);
      const connection = new WebSocketConnection(init, webSocket);
      if (entry) this.registry.claim(entry, "active", "WebSockets");
      this.adopt(entry, connection);
      try {
        connection.start(attach ? { onConnected: attach } : this.options.handler);
      } catch {
        // start() closed the socket with 1011 and logged the error.
      }
    });
  }

  /**
   * Retires the entry if the socket closes before the upgrade completes. Its own function on purpose: a
   * listener created in the upgrade's scope would keep that scope's request (a few KB) alive for the life
   * of every connection.
   */
  private retireUnlessUpgraded(socket: Duplex, entry: ConnectionEntry | undefined): { done(): void } {
    const onClose = (): void => {
      if (entry) this.retire(entry);
    };
    socket.once("close", onClose);
    return { done: () => socket.removeListener("close", onClose) };
  }

  private connectionInit(
    connectionId: string,
    transport: TransportName,
    req: IncomingMessage,
    route: Route,
    user: AuthenticatedUser,
    entry: ConnectionEntry | undefined,
    statefulReconnect: boolean,
  ): ConnectionInit {
    // The endpoint's own path string when it is the same: one copy instead of one per connection.
    const path = route.pathname === this.path ? this.path : route.pathname;
    // Likewise the user id string of the entry, which lives as long as the connection.
    if (entry?.userId !== undefined && entry.userId === user.userId) user = { ...user, userId: entry.userId };
    // A WebSocket's socket is the connection's own; other transports' requests end before their connection.
    const socketIsConnection = transport === "WebSockets";
    const request = connectionRequest(req, path, route.query, user, socketIsConnection);
    return { connectionId, request, statefulReconnect, shared: this.shared };
  }

  /** Tracks a new connection until it finishes. */
  private adopt(entry: ConnectionEntry | undefined, connection: BaseConnection): void {
    if (entry) entry.connection = connection;
    this.live.set(connection, entry);
  }

  /** Keeps a tombstone while the token could still be replayed, or while long polling drains. */
  private retire(entry: ConnectionEntry): void {
    if (entry.state === "closed") return;
    const drain = entry.transport === "LongPolling" ? this.options.disconnectTimeoutMs : 0;
    // Read from the token (checked or issued here) rather than kept in every entry. A key that is not a
    // token (negotiate version 0) cannot be replayed elsewhere.
    const issuedAtMs = tokenIssuedAtMs(entry.key);
    const validUntilMs = issuedAtMs === undefined ? 0 : issuedAtMs + this.options.tokenLifetimeMs;
    this.registry.retire(entry, Math.max(drain, validUntilMs - Date.now()));
  }
}
