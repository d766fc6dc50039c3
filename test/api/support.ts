// Serving the server API on its own node:http server (port 0) for tests, and calling it with global fetch.
import { createServer as createHttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createApiHandler, type ApiHandlerOptions } from "../../src/api/index.js";
import type { Logger } from "../../src/log.js";

export interface ApiServer {
  url(path: string): string;
  close(): Promise<void>;
}

/** Serves `createApiHandler(options)`; what it declines answers 418 "not the API", so tests can see the fall-through. */
export async function serveApi(options: ApiHandlerOptions): Promise<ApiServer> {
  const handler = createApiHandler(options);
  const server = createHttpServer((req, res) => {
    handler(req, res).then(
      (handled) => {
        if (!handled) res.writeHead(418, { "Content-Type": "text/plain" }).end("not the API");
      },
      (err: unknown) => res.writeHead(599).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

export interface LogEntry {
  level: string;
  fields: Record<string, unknown>;
  message: string | undefined;
}

/** A logger that keeps every entry. */
export function recordingLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: string) =>
    (fields: object, message?: string): void => {
      entries.push({ level, fields: fields as Record<string, unknown>, message });
    };
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
}

export interface CallOptions {
  method?: string;
  /** Sent as JSON with Content-Type application/json. */
  json?: unknown;
  /** Sent as it is (fetch labels a string text/plain unless headers say otherwise). */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  /** The API key, as a bearer token; null for none. */
  key?: string | null;
}

export const testKey = "sb_test_0f6c2d1e9a8b7c6d5e4f3a2b1c0d9e8f";

/** Calls the API and parses the reply as JSON (the API always answers JSON). */
export async function call(url: string, options: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  const key = options.key === undefined ? testKey : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: string | Uint8Array | undefined = options.raw;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(url, {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    body,
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === "" ? undefined : JSON.parse(text),
  };
}
