import type { IncomingMessage, ServerResponse } from "node:http";
import { context as otelContext, SpanStatusCode, trace } from "@opentelemetry/api";
import { contextOfRequest, SpanKind, tracer } from "../tracing.js";
import type { Logger } from "../log.js";
import type { Notifier } from "../notifications/notifier.js";
import { ApiError, internalErrorBody, RequestAbortedError } from "./api-errors.js";
import { keyMatches, parseKeyHashes, presentedKey } from "./api-keys.js";
import { apiLog } from "./api.log.js";
import { readJsonBody } from "./request-body.js";
import { decodeParams, matchRoute, pathOf } from "./router.js";
import { apiRoutes, type ApiContext, type ApiResponse } from "./routes.js";

/** Every route, for the not_found answer: "POST /api/broadcast, GET /api/nodes, …". */
const ROUTE_LIST = apiRoutes.map((route) => `${route.method} ${route.path}`).join(", ");

export interface ApiHandlerOptions {
  /** The notification service (`server.notifications`). Without it the notification routes answer 404 `notifications_disabled`. */
  notifier?: Notifier;
  /** Where messages are published and nodes listed (`server.backplane`, or a publisher's). */
  backplane: ApiContext["backplane"];
  /**
   * The hub paths that exist. A message route picks one with its body's `hub` field; the default is the
   * notification hub's path when there is a notifier (that path is always accepted), else `hub` is required.
   */
  hubs: readonly string[];
  /** Hex SHA-256 of each accepted API key (see hashApiKey). None, and not `allowWithoutKey`: the API is disabled. */
  apiKeyHashes?: readonly string[];
  /**
   * Demo mode: requests without a key are accepted. A request that presents a key must still present a valid
   * one when `apiKeyHashes` are configured. Default false. Never in production: anyone could notify anyone.
   */
  allowWithoutKey?: boolean;
  /** The largest request body accepted, in bytes. Default 64 KiB. */
  maxBodyBytes?: number;
  /** Where the API's log events go (see api.log.ts). */
  logger: Logger;
}

/** Handles a request under `/api/` and resolves true; resolves false (untouched) for any other URL. */
export type ApiHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export const defaultMaxBodyBytes = 64 * 1024;

/**
 * The HTTP server API: notify, publish to users, groups and everyone, presence and the node list, for
 * backends in any language. Mount it in front of anything else on the same HTTP server:
 *
 * @example
 * const api = createApiHandler({ notifier: server.notifications, backplane: server.backplane,
 *   hubs: ["/hubs/chat"], apiKeyHashes: [process.env.API_KEY_SHA256!], logger });
 * http.createServer(async (req, res) => { if (!(await api(req, res))) next(req, res); });
 *
 * Without any key hash (and not in demo mode) every route except `/api/openapi.json` answers
 * **404** `api_disabled`, not 403: the API is switched off, as if it were not mounted, and no credential
 * could change that (403 would say the resource exists and this caller may not use it). The distinct code
 * still tells an operator why.
 */
export function createApiHandler(options: ApiHandlerOptions): ApiHandler {
  const { notifier, backplane, logger } = validate(options);
  const hashes = parseKeyHashes(options.apiKeyHashes ?? []);
  const allowWithoutKey = options.allowWithoutKey ?? false;
  const maxBodyBytes = options.maxBodyBytes ?? defaultMaxBodyBytes;
  const disabled = hashes.length === 0 && !allowWithoutKey;
  if (disabled) apiLog.disabled(logger);
  else if (allowWithoutKey) apiLog.openWithoutKey(logger);

  const hubs = new Set(options.hubs);
  if (notifier) hubs.add(notifier.options.path);
  const context: ApiContext = {
    notifier,
    backplane,
    hubs: [...hubs],
    resolveHub(hub) {
      const chosen = hub ?? notifier?.options.path;
      if (chosen === undefined)
        throw new ApiError(
          "invalid_request",
          `Invalid request: body.hub: is required (this server has no notification hub); one of ${list(hubs)}.`,
        );
      if (!hubs.has(chosen)) throw new ApiError("unknown_hub", `No hub at '${chosen}'. Hubs: ${list(hubs)}.`);
      return chosen;
    },
  };

  /** Throws ApiError "unauthorized" unless the request may use the API. */
  const authorize = (req: IncomingMessage, request: { method: string; route: string }) => {
    const key = presentedKey(req);
    if (key === undefined && allowWithoutKey) return;
    // A presented key is checked whenever there is something to check it against.
    if (key !== undefined && (hashes.length === 0 || keyMatches(key, hashes))) return;
    apiLog.unauthorized(logger, request, req.socket.remoteAddress, key !== undefined);
    throw key === undefined
      ? new ApiError(
          "unauthorized",
          "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
          { "WWW-Authenticate": "Bearer" },
        )
      : new ApiError("unauthorized", "The API key is not valid.", {
          "WWW-Authenticate": 'Bearer error="invalid_token"',
        });
  };

  const route = async (
    req: IncomingMessage,
    path: string,
    request: { method: string; route: string },
  ): Promise<ApiResponse> => {
    const match = matchRoute(apiRoutes, req.method, path);
    if (match.kind === "route") request.route = match.route.path;
    if (!(match.kind === "route" && match.route.public)) {
      if (disabled)
        throw new ApiError(
          "api_disabled",
          "The server API is disabled on this server: configure an API key (apiKeyHashes) to enable it.",
        );
      authorize(req, request);
    }
    if (match.kind === "not_found")
      throw new ApiError(
        "not_found",
        `No server API route has this path. The routes: ${ROUTE_LIST} (described in /api/openapi.json).`,
      );
    if (match.kind === "method_not_allowed")
      throw new ApiError("method_not_allowed", `This path allows ${match.allow.join(", ")} only.`, {
        Allow: match.allow.join(", "),
      });
    const params = decodeParams(match.params);
    const body = match.route.method === "POST" ? await readJsonBody(req, maxBodyBytes) : undefined;
    const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
    return match.route.handle(context, { params, body, query });
  };

  return async (req, res) => {
    const path = pathOf(req.url);
    if (path !== "/api" && !path.startsWith("/api/")) return false;
    const started = performance.now();
    const request = { method: req.method ?? "GET", route: "(no route)" };
    let status = 500;
    // A span for the request, child of the trace the caller's headers carry: sends made here join it.
    const parent = contextOfRequest(req.headers);
    const span = tracer.startSpan(
      "switchboard api",
      { kind: SpanKind.SERVER, attributes: { "http.request.method": request.method } },
      parent,
    );
    const endSpan = () => {
      span.updateName(`${request.method} ${request.route}`);
      span.setAttributes({ "http.route": request.route, "http.response.status_code": status });
      if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    try {
      const response = await otelContext.with(trace.setSpan(parent, span), () => route(req, path, request));
      status = response.status;
      send(res, response.status, response.body);
    } catch (err) {
      if (err instanceof RequestAbortedError) {
        apiLog.aborted(logger, request);
        res.destroy();
        endSpan();
        return true;
      }
      if (err instanceof ApiError) {
        status = err.status;
        send(res, err.status, err.toBody(), err.headers);
      } else if (err instanceof Error && err.name === "BackplaneUnavailableError") {
        apiLog.backplaneUnavailable(logger, request, err);
        const unavailable = new ApiError(
          "backplane_unavailable",
          "The backplane cannot accept the request now; retry later.",
        );
        status = unavailable.status;
        send(res, status, unavailable.toBody());
      } else {
        apiLog.failed(logger, request, err);
        status = 500;
        send(res, status, internalErrorBody);
      }
    }
    endSpan();
    apiLog.handled(logger, request, status, Math.round(performance.now() - started));
    return true;
  };
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
) {
  if (res.headersSent) {
    res.end();
    return;
  }
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(payload),
    "Cache-Control": "no-store",
    ...headers,
  });
  res.end(payload);
}

function list(hubs: ReadonlySet<string>): string {
  return hubs.size === 0 ? "(none)" : [...hubs].join(", ");
}

function validate(options: ApiHandlerOptions): ApiHandlerOptions {
  const { backplane, hubs, maxBodyBytes, logger } = options;
  if (typeof backplane?.publish !== "function" || typeof backplane.nodes !== "function")
    throw new TypeError("Option 'backplane' must have publish and nodes (a Backplane).");
  if (!Array.isArray(hubs) || !hubs.every((hub) => typeof hub === "string" && hub.startsWith("/")))
    throw new TypeError("Option 'hubs' must be an array of hub paths such as \"/hubs/chat\".");
  if (maxBodyBytes !== undefined && !(Number.isInteger(maxBodyBytes) && maxBodyBytes > 0))
    throw new TypeError("Option 'maxBodyBytes' must be a positive integer.");
  if (typeof logger?.error !== "function") throw new TypeError("Option 'logger' must be a logger.");
  if (options.apiKeyHashes !== undefined && !Array.isArray(options.apiKeyHashes))
    throw new TypeError("Option 'apiKeyHashes' must be an array of hex SHA-256 digests.");
  return options;
}
