/**
 * @module
 * The HTTP server API: lets a backend in any language notify identifiers, send to users, groups and everyone,
 * and read presence and the node list, with an API key. Described by the OpenAPI document at
 * `GET /api/openapi.json` (openapi.ts); errors and their codes are listed in api-errors.ts.
 */

// Mounting the API.
export {
  createApiHandler,
  defaultMaxBodyBytes,
  type ApiHandler,
  type ApiHandlerOptions,
} from "./api-handler.js";

// Keys: operators configure the SHA-256 of each key, never the key.
export { hashApiKey } from "./api-keys.js";

// The contract: error codes and the OpenAPI document.
export { apiErrorStatus, type ApiErrorCode, type ApiErrorBody } from "./api-errors.js";
export { openApiDocument } from "./openapi.js";

// The route table, for tools and tests that check it against the document.
export { apiRoutes, type ApiRoute } from "./routes.js";
