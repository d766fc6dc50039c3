/**
 * The server API's log events (ids 200–299; see src/log.ts for the style). API keys, request
 * bodies and message arguments are never logged; a route is logged as its pattern, not the raw URL.
 */
import { emit, errorFields, type Logger } from "../log.js";

type Request = { method: string; route: string };

export const apiLog = {
  disabled: (log: Logger) =>
    emit(
      log,
      "info",
      206,
      "ApiDisabled",
      {},
      "No API key is configured: the server API answers 404 api_disabled (except /api/openapi.json).",
    ),
  openWithoutKey: (log: Logger) =>
    emit(
      log,
      "warn",
      207,
      "ApiOpenWithoutKey",
      {},
      "The server API accepts requests without a key (demo mode): anyone who can reach it can notify and publish.",
    ),
  handled: (log: Logger, request: Request, status: number, durationMs: number) =>
    emit(
      log,
      "debug",
      201,
      "ApiRequest",
      { ...request, status, durationMs },
      "Handled a server API request.",
    ),
  unauthorized: (log: Logger, request: Request, remoteAddress: string | undefined, keyPresented: boolean) =>
    emit(
      log,
      "warn",
      202,
      "ApiUnauthorized",
      { ...request, remoteAddress, keyPresented },
      "Refused a server API request without a valid API key.",
    ),
  backplaneUnavailable: (log: Logger, request: Request, err: unknown) =>
    emit(
      log,
      "warn",
      203,
      "ApiBackplaneUnavailable",
      { ...request, ...errorFields(err) },
      "The backplane could not accept a server API request; answered 503.",
    ),
  failed: (log: Logger, request: Request, err: unknown) =>
    emit(
      log,
      "error",
      204,
      "ApiRequestFailed",
      { ...request, ...errorFields(err) },
      "A server API request failed; answered 500.",
    ),
  aborted: (log: Logger, request: Request) =>
    emit(
      log,
      "debug",
      205,
      "ApiRequestAborted",
      { ...request },
      "The client went away before its request was read.",
    ),
};
