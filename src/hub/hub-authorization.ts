import type { HubDefinition } from "./hub.js";

/** Who is calling, as an authorization rule sees it: what the `authenticate` hook returned. */
export interface HubUser {
  readonly userId: string | undefined;
  readonly claims: Readonly<Record<string, unknown>> | undefined;
}

/**
 * True lets the user in. Synchronous on purpose: it decides from the claims the connection was
 * authenticated with (as ASP.NET Core's policies over claims do). A check that needs I/O belongs in the
 * method itself, which may throw a `HubError`.
 */
export type AuthorizationRule = (user: HubUser) => boolean;

/**
 * A hub's authorization rules, given as a static `authorize` property of its class (or an `authorize`
 * property of a hub given as an object), like ASP.NET Core's `[Authorize(Policy = ...)]` on a hub and on
 * its methods.
 *
 * @example
 * const isAdmin: AuthorizationRule = (user) => user.claims?.role === "admin";
 * class RoomHub extends Hub {
 *   static authorize: HubAuthorization = {
 *     connect: (user) => user.userId !== undefined,
 *     methods: { closeRoom: isAdmin },
 *   };
 *   closeRoom(room: string) { ... }
 * }
 */
export interface HubAuthorization {
  /**
   * Who may connect to the hub at all, checked on negotiate and on the request that starts a connection.
   * Refused: 401 for an anonymous request, 403 for an authenticated one.
   */
  connect?: AuthorizationRule;
  /**
   * Who may invoke a method, by its name (case-insensitively, as clients call them). A refused invocation
   * completes with ASP.NET Core's error, "Failed to invoke '{method}' because user is unauthorized", and
   * the connection stays open. Methods not named here are open to every connected user.
   */
  methods?: Record<string, AuthorizationRule>;
}

/**
 * Reads and checks a hub definition's `authorize` property, and attaches each method rule to its method.
 * @returns The connect rule, if any.
 * @throws TypeError naming the hub and the rule, for a malformed one or a rule for a method the hub lacks.
 */
export function applyAuthorization(
  hubPath: string,
  definition: HubDefinition,
  methods: Map<string, { authorize?: AuthorizationRule }>,
): AuthorizationRule | undefined {
  const given = (definition as { authorize?: unknown }).authorize;
  // A plain-object hub's own method called "authorize" is a method, not rules.
  if (given === undefined || typeof given === "function") return undefined;
  const where = `The hub at '${hubPath}'`;
  if (given === null || typeof given !== "object") {
    throw new TypeError(`${where}: 'authorize' must be an object with 'connect' and/or 'methods' rules.`);
  }
  const { connect, methods: methodRules, ...unknown } = given as HubAuthorization;
  for (const name of Object.keys(unknown)) {
    throw new TypeError(`${where}: 'authorize.${name}' is not known (use 'connect' and 'methods').`);
  }
  if (connect !== undefined && typeof connect !== "function") {
    throw new TypeError(
      `${where}: 'authorize.connect' must be a function of the user that returns a boolean.`,
    );
  }
  if (methodRules !== undefined && (methodRules === null || typeof methodRules !== "object")) {
    throw new TypeError(`${where}: 'authorize.methods' must map method names to rules.`);
  }
  for (const [name, rule] of Object.entries(methodRules ?? {})) {
    const method = methods.get(name.toLowerCase());
    if (method === undefined) {
      throw new TypeError(`${where}: 'authorize.methods.${name}' names no method of the hub.`);
    }
    if (typeof rule !== "function") {
      throw new TypeError(
        `${where}: 'authorize.methods.${name}' must be a function of the user that returns a boolean.`,
      );
    }
    method.authorize = rule;
  }
  return connect;
}
