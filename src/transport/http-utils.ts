// Small HTTP helpers of the transport layer: URL splitting, plain-text answers, bounded body reading.

import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { AuthenticatedUser } from "./endpoint-options.js";
import type { ConnectionRequest } from "./transport-connection.js";

/** A request URL split into its raw path and its query. */
export interface SplitUrl {
  pathname: string;
  query: URLSearchParams;
}

/** Splits `req.url` by hand: `new URL` would read a path like `//x` as a host. */
export function splitUrl(url: string | undefined): SplitUrl {
  const raw = url ?? "/";
  const mark = raw.indexOf("?");
  if (mark === -1) return { pathname: raw, query: new URLSearchParams() };
  return { pathname: raw.slice(0, mark), query: new URLSearchParams(raw.slice(mark + 1)) };
}

/** A query parameter by case-insensitive name (as ASP.NET Core reads them); the last value wins. */
export function queryValue(query: URLSearchParams, name: string): string | undefined {
  const wanted = name.toLowerCase();
  let found: string | undefined;
  for (const [key, value] of query) if (key.toLowerCase() === wanted) found = value;
  return found;
}

/** The query as the hub layer sees it: one value per name (the last), the secret `id` removed. */
const hiddenParameters = new Set(["id", "access_token"]);

export function publicQuery(query: URLSearchParams): URLSearchParams {
  const last = new Map<string, string>();
  // The connection token and a browser's access token are credentials: hub code never sees them. The
  // names are the same for every client: kept once (see sharedString), not once per connection.
  for (const [key, value] of query) {
    if (!hiddenParameters.has(key.toLowerCase())) last.set(sharedString(key), value);
  }
  // Copied once more: a copy keeps its pairs in an array of the exact size, ~130 bytes less for each
  // connection, which keeps its query for its whole life.
  return new URLSearchParams(new URLSearchParams([...last]));
}

/**
 * Headers whose values are mostly the same for every client (the same browser, page and server). A
 * connection keeps its request's headers for its whole life, so these values are kept once, not once per
 * connection: with a browser's headers that is several hundred bytes per idle connection.
 */
const REPEATING_HEADERS = new Set([
  "accept",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "connection",
  "host",
  "origin",
  "pragma",
  "sec-websocket-extensions",
  "sec-websocket-version",
  "upgrade",
  "user-agent",
  "x-requested-with",
]);
/** Values longer than this are not shared (nor kept in the table). */
const MAX_SHARED_VALUE_LENGTH = 512;
/** When the table is this full it starts over, so it follows what clients send now. */
const MAX_SHARED_VALUES = 1_000;
const sharedValues = new Map<string, string>();

/** An equal string already held, if any (the given one is held from now on otherwise). */
function sharedString(value: string): string {
  if (value.length > MAX_SHARED_VALUE_LENGTH) return value;
  const shared = sharedValues.get(value);
  if (shared !== undefined) return shared;
  if (sharedValues.size >= MAX_SHARED_VALUES) sharedValues.clear();
  sharedValues.set(value, value);
  return value;
}

/** Replaces the values of {@link REPEATING_HEADERS} by equal strings already held. */
function shareRepeatingValues(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  for (const name of REPEATING_HEADERS) {
    const value = headers[name];
    if (typeof value === "string") headers[name] = sharedString(value);
  }
  return headers;
}

/**
 * What the hub layer learns of the request that started a connection. `socketIsConnection` says the
 * request's socket lives exactly as long as the connection (a WebSocket).
 */
export function connectionRequest(
  req: IncomingMessage,
  pathname: string,
  query: URLSearchParams,
  user: AuthenticatedUser,
  socketIsConnection: boolean,
): ConnectionRequest {
  return new StartingRequest(
    shareRepeatingValues(req.headers),
    publicQuery(query),
    pathname,
    user.userId,
    user.claims,
    user.expiresAt?.getTime(),
    socketIsConnection ? req.socket : req.socket.remoteAddress,
  );
}

/** A {@link ConnectionRequest}, kept for the life of its connection. */
class StartingRequest implements ConnectionRequest {
  // The address, or the connection's own socket to read it from when asked: on first read Node builds an
  // address object that the socket keeps, and most connections never need it. (Read first after the
  // socket closed, it is undefined; nothing in the hub layer reads it.)
  readonly #address: Socket | string | undefined;
  // Own properties only when the authentication hook gave them, so a request without has no slot for
  // them; it reads them from the prototype (undefined, as declared after the class).
  declare readonly auth?: Readonly<Record<string, unknown>>;
  declare readonly authExpiresAtMs?: number;

  constructor(
    readonly headers: IncomingHttpHeaders,
    readonly query: URLSearchParams,
    readonly path: string,
    readonly userId: string | undefined,
    auth: Readonly<Record<string, unknown>> | undefined,
    authExpiresAtMs: number | undefined,
    address: Socket | string | undefined,
  ) {
    this.#address = address;
    if (auth !== undefined) this.auth = auth;
    if (authExpiresAtMs !== undefined) this.authExpiresAtMs = authExpiresAtMs;
  }

  get remoteAddress(): string | undefined {
    const address = this.#address;
    return typeof address === "object" ? address.remoteAddress : address;
  }
}
Object.assign(StartingRequest.prototype, { auth: undefined, authExpiresAtMs: undefined });

/** Answers with a plain-text body (possibly empty). Does nothing if an answer already started. */
export function writeText(
  res: ServerResponse,
  status: number,
  body = "",
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(body, "utf8");
  res.writeHead(status, { "Content-Type": "text/plain", "Content-Length": bytes.length, ...headers });
  res.end(bytes);
}

/** Answers with a JSON body and an explicit Content-Length. */
export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(JSON.stringify(value), "utf8");
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": bytes.length });
  res.end(bytes);
}

/** Refuses a WebSocket upgrade with a plain HTTP answer, then closes the socket. */
export function abortHandshake(socket: Duplex, status: number, body = ""): void {
  if (socket.destroyed) return;
  const bytes = Buffer.from(body, "utf8");
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n` +
    "Connection: close\r\nContent-Type: text/plain\r\n" +
    `Content-Length: ${bytes.length}\r\n\r\n`;
  socket.once("finish", () => socket.destroy());
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), bytes]));
}

/** Thrown by {@link readBody} for a body over the limit. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The request body is larger than ${limit} bytes.`);
    this.name = "BodyTooLargeError";
  }
}

/**
 * Reads a whole request body, at most `limit` bytes.
 * @throws BodyTooLargeError when the body is over the limit (checked on Content-Length first).
 * @throws Error when the request ends early or fails.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLargeError(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        // Stop reading; the 413 goes out with "Connection: close", which drops the rest.
        req.pause();
        reject(new BodyTooLargeError(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error("The request ended before its body was complete."));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}
