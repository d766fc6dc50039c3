/**
 * A tiny router: a table of method + path template (OpenAPI syntax, `/api/users/{userId}/messages`) → handler.
 * Paths are split on "/" before percent-decoding, so a parameter may contain an encoded slash (`%2F`).
 */
import { ApiError } from "./api-errors.js";
import { parseOrThrow, pathParam } from "./schemas.js";

export type HttpMethod = "GET" | "POST";

/** What the table needs to know of a route to match it. */
export interface RoutePattern {
  method: HttpMethod;
  /** The path template, exactly as it appears in the OpenAPI document's `paths`. */
  path: string;
}

export type RouteMatch<R extends RoutePattern> =
  /** `params` are still percent-encoded: decode them with {@link decodeParams} once the caller is authorised. */
  | { kind: "route"; route: R; params: Record<string, string> }
  | { kind: "method_not_allowed"; allow: HttpMethod[] }
  | { kind: "not_found" };

/** The path of a request target, without its query string or fragment. */
export function pathOf(url: string | undefined): string {
  return (url ?? "/").split(/[?#]/, 1)[0]!;
}

export function matchRoute<R extends RoutePattern>(
  routes: readonly R[],
  method: string | undefined,
  path: string,
): RouteMatch<R> {
  const segments = path.split("/");
  const allow: HttpMethod[] = [];
  for (const route of routes) {
    const params = matchPath(route.path, segments);
    if (!params) continue;
    if (route.method === method) return { kind: "route", route, params };
    if (!allow.includes(route.method)) allow.push(route.method);
  }
  return allow.length > 0 ? { kind: "method_not_allowed", allow } : { kind: "not_found" };
}

function matchPath(template: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = template.split("/");
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [index, part] of parts.entries()) {
    const segment = segments[index]!;
    const name = /^\{(\w+)\}$/.exec(part)?.[1];
    if (name !== undefined) params[name] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}

/**
 * Percent-decodes each parameter and checks it against the `pathParam` schema.
 * @throws ApiError "invalid_request" naming the parameter.
 */
export function decodeParams(raw: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, encoded] of Object.entries(raw)) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(encoded);
    } catch {
      throw new ApiError("invalid_request", `Invalid request: ${name}: is not valid percent-encoding.`);
    }
    params[name] = parseOrThrow(pathParam, decoded, name);
  }
  return params;
}
