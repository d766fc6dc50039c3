import { z } from "zod";
import { ApiError } from "./api-errors.js";

/**
 * What the server API accepts, as zod schemas. Objects are strict: an unknown field is an error, so a typo
 * ("mesage") fails loudly instead of being ignored. openapi.ts describes the same shapes for other languages.
 */

/** A string field; a missing one reads "is required" rather than zod's "expected string, received undefined". */
const text = () =>
  z.string({ error: (issue) => (issue.input === undefined ? "is required" : "must be a string") });

/** A path parameter (identifier, user id, group), after percent-decoding. Same rule as the notifier's identifiers. */
export const pathParam = text()
  .min(1, "must not be empty")
  .max(256, "must be at most 256 characters")
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters");

/** `POST /api/notifications/{identifier}`: a status or a text (exactly one), and what to do if nobody is there. */
export const notifyBody = z
  .strictObject({
    status: text().min(1, "must not be empty").max(256, "must be at most 256 characters").optional(),
    message: text().min(1, "must not be empty").optional(),
    ifOffline: z.enum(["error", "store"], { error: 'must be "error" or "store"' }).optional(),
    confirm: z.boolean({ error: "must be true or false" }).optional(),
    confirmTimeoutMs: z
      .number({ error: "must be a number of milliseconds" })
      .int("must be a whole number of milliseconds")
      .min(1, "must be at least 1")
      .max(120_000, "must be at most 120000 (wait longer by asking again later)")
      .optional(),
  })
  .refine((body) => (body.status === undefined) !== (body.message === undefined), {
    message: "give exactly one of 'status' and 'message'",
  });

export type NotifyBody = z.output<typeof notifyBody>;

/** How deep a message's arguments may nest: well inside what the backplane's MessagePack carries (100). */
export const MAX_ARGUMENT_DEPTH = 64;

/** Whether `value` nests at most `limit` levels of arrays and objects (walked without recursion). */
function nestsAtMost(value: unknown, limit: number): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== "object") continue;
    if (depth >= limit) return false;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return true;
}

/** `POST /api/users/…/messages`, `/api/groups/…/messages`, `/api/broadcast`: a client method call. */
export const sendBody = z.strictObject({
  method: text().min(1, "must not be empty").max(256, "must be at most 256 characters"),
  arguments: z
    .array(z.unknown(), { error: "must be an array" })
    .refine((args) => nestsAtMost(args, MAX_ARGUMENT_DEPTH), {
      message: `must not nest more than ${MAX_ARGUMENT_DEPTH} levels deep`,
    })
    .optional(),
  hub: text().startsWith("/", 'must be a hub path such as "/hubs/chat"').optional(),
});

export type SendBody = z.output<typeof sendBody>;

/** `POST /api/connections/{connectionId}/disconnect`: the connection's hub (default: the notification hub). */
export const disconnectBody = z.strictObject({
  hub: text().startsWith("/", 'must be a hub path such as "/hubs/chat"').optional(),
});

/**
 * Parses `value` or throws ApiError "invalid_request" naming each failing field, e.g.
 * `body.method: is required` or `identifier: must not be empty`.
 */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${fieldName(where, issue.path)}: ${issue.message}`);
  throw new ApiError("invalid_request", `Invalid request: ${problems.join("; ")}.`);
}

function fieldName(where: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (name, key) => (typeof key === "number" ? `${name}[${key}]` : `${name}.${String(key)}`),
    where,
  );
}
