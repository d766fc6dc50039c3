/**
 * The server API's log events, each with a stable `event` name to grep and alert on. API keys, request
 * bodies and message arguments are never logged; a route is logged as its pattern, not the raw URL.
 */
import type { Logger } from "../hub/hub.log.js";

type Request = { method: string; route: string };

export const apiLog = {
  disabled: (log: Logger) =>
    log.info(
      { event: "ApiDisabled" },
      "No API key is configured: the server API answers 404 api_disabled (except /api/openapi.json).",
    ),
  openWithoutKey: (log: Logger) =>
    log.warn(
      { event: "ApiOpenWithoutKey" },
      "The server API accepts requests without a key (demo mode): anyone who can reach it can notify and publish.",
    ),
  handled: (log: Logger, request: Request, status: number, durationMs: number) =>
    log.debug({ event: "ApiRequest", ...request, status, durationMs }, "Handled a server API request."),
  unauthorized: (log: Logger, request: Request, remoteAddress: string | undefined, keyPresented: boolean) =>
    log.warn(
      { event: "ApiUnauthorized", ...request, remoteAddress, keyPresented },
      "Refused a server API request without a valid API key.",
    ),
  backplaneUnavailable: (log: Logger, request: Request, err: unknown) =>
    log.warn(
      { event: "ApiBackplaneUnavailable", ...request, err },
      "The backplane could not accept a server API request; answered 503.",
    ),
  failed: (log: Logger, request: Request, err: unknown) =>
    log.error({ event: "ApiRequestFailed", ...request, err }, "A server API request failed; answered 500."),
  aborted: (log: Logger, request: Request) =>
    log.debug(
      { event: "ApiRequestAborted", ...request },
      "The client went away before its request was read.",
    ),
};
