/**
 * The server API's errors: every failure is JSON `{ "error": "<message for people>", "code": "<stable code>" }`
 * with the status below. Codes are a contract (clients branch on them); messages may change.
 *
 * | code                      | status | when                                                          |
 * |---------------------------|--------|---------------------------------------------------------------|
 * | invalid_json              | 400    | the body is not valid UTF-8 JSON                              |
 * | invalid_request           | 400    | a path parameter or the body breaks the schema (names the field) |
 * | unknown_status            | 400    | a notification status without a template                      |
 * | unauthorized              | 401    | no API key, or a wrong one (with `WWW-Authenticate: Bearer`)  |
 * | api_disabled              | 404    | no API key is configured and demo mode is off                 |
 * | not_found                 | 404    | no route has this path                                        |
 * | not_connected             | 404    | nobody registered the identifier (and `ifOffline` is "error") |
 * | unknown_hub               | 404    | the `hub` field names a hub this server does not have         |
 * | notifications_disabled    | 404    | a notification route on a server without the notification service |
 * | method_not_allowed        | 405    | the path exists, the method does not (with `Allow`)           |
 * | payload_too_large         | 413    | the body exceeds `maxBodyBytes`                               |
 * | unsupported_media_type    | 415    | a POST whose Content-Type is not application/json             |
 * | internal_error            | 500    | a bug or an unexpected failure (logged; no detail is sent)    |
 * | backplane_unavailable     | 503    | the backplane could not accept the operation; retry later     |
 */

export const apiErrorStatus = {
  invalid_json: 400,
  invalid_request: 400,
  unknown_status: 400,
  unauthorized: 401,
  api_disabled: 404,
  not_found: 404,
  not_connected: 404,
  unknown_hub: 404,
  notifications_disabled: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal_error: 500,
  backplane_unavailable: 503,
} as const;

export type ApiErrorCode = keyof typeof apiErrorStatus;

/** The JSON body of every error response. */
export interface ApiErrorBody {
  error: string;
  code: ApiErrorCode;
}

/** An error the API answers as it is: its message is safe to show the caller. */
export class ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: ApiErrorCode,
    message: string,
    /** Extra response headers (Allow, WWW-Authenticate, …). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = apiErrorStatus[code];
  }

  toBody(): ApiErrorBody {
    return { error: this.message, code: this.code };
  }
}

/** The body sent for anything that is not an ApiError: no detail leaves the server. */
export const internalErrorBody: ApiErrorBody = {
  error: "The server failed to handle the request. The failure has been logged.",
  code: "internal_error",
};

/** The request ended (the client went away) before its body was read; nobody is left to answer. */
export class RequestAbortedError extends Error {
  constructor() {
    super("The client closed the request before sending its whole body.");
    this.name = "RequestAbortedError";
  }
}
