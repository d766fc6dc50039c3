import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * CORS for browser pages on other origins. The official client sends credentials by default, so the
 * origin is echoed (never "*") with Allow-Credentials. Returns true when it answered a preflight itself.
 */
export function applyCors(
  allowed: true | string[] | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const origin = req.headers.origin;
  if (!allowed || !origin || (allowed !== true && !allowed.includes(origin))) return false;
  res.setHeader("Access-Control-Allow-Origin", origin);
  res.setHeader("Access-Control-Allow-Credentials", "true");
  res.setHeader("Vary", "Origin");
  if (req.method !== "OPTIONS") return false;
  res.setHeader("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  res.setHeader(
    "Access-Control-Allow-Headers",
    req.headers["access-control-request-headers"] ??
      "x-requested-with, x-signalr-user-agent, authorization, content-type",
  );
  res.setHeader("Access-Control-Max-Age", "600");
  res.writeHead(204).end();
  return true;
}

/**
 * Whether a WebSocket upgrade may proceed. Browsers send cookies with cross-site WebSocket requests and CORS
 * does not apply to them, so the Origin is checked here: requests without one (non-browser clients), from
 * the same host, or from an origin the `cors` option allows pass.
 */
export function originAllowed(allowed: true | string[] | undefined, req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (!origin || allowed === true) return true;
  if (allowed?.includes(origin)) return true;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
