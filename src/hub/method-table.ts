import type { AuthorizationRule } from "./hub-authorization.js";
import type { HubDefinition } from "./hub.js";

/** A hub method as the dispatcher sees it. */
export interface HubMethod {
  /** The name as declared in the hub. */
  name: string;
  fn: (...args: unknown[]) => unknown;
  /** Parameters the method requires (Function.length: those before the first default or rest). */
  minArgs: number;
  /** The most it takes; Infinity with a rest parameter or defaults. */
  maxArgs: number;
  /** True for async generator methods: known to stream before they are called. */
  isStreaming: boolean;
  /** Who may invoke it (the hub's `authorize.methods`); everyone when unset. */
  authorize?: AuthorizationRule;
}

/** Names that exist on every hub and are never invocable. */
const reserved = new Set(["constructor", "onconnected", "ondisconnected"]);

/**
 * The invocable methods of a hub, keyed by lower-cased name (clients look methods up case-insensitively, as
 * ASP.NET Core does). Methods are collected once, from the class's prototype chain (up to, not including,
 * Object.prototype and the Hub base) or the object's own functions. Names starting with `_` stay private.
 */
export function buildMethodTable(definition: HubDefinition, hubBase: object): Map<string, HubMethod> {
  const table = new Map<string, HubMethod>();
  const owners: object[] = [];
  if (typeof definition === "function") {
    for (
      let proto = definition.prototype as object | null;
      proto && proto !== Object.prototype && proto !== hubBase;
    ) {
      owners.push(proto);
      proto = Object.getPrototypeOf(proto) as object | null;
    }
  } else {
    owners.push(definition);
  }
  for (const owner of owners) {
    for (const name of Object.getOwnPropertyNames(owner)) {
      const key = name.toLowerCase();
      if (reserved.has(key) || name.startsWith("_") || table.has(key)) continue;
      const descriptor = Object.getOwnPropertyDescriptor(owner, name);
      const fn: unknown = descriptor?.value;
      if (typeof fn !== "function") continue;
      const variadic = hasOptionalParameters(fn);
      table.set(key, {
        name,
        fn: fn as HubMethod["fn"],
        minArgs: fn.length,
        maxArgs: variadic ? Infinity : fn.length,
        isStreaming: fn.constructor?.name === "AsyncGeneratorFunction",
      });
    }
  }
  return table;
}

/** Whether a function declares a default or rest parameter (then Function.length is only a minimum). */
function hasOptionalParameters(fn: { toString(): string }): boolean {
  const source = fn.toString();
  const open = source.indexOf("(");
  if (open < 0) return false; // a single-parameter arrow function without parentheses
  let depth = 0;
  for (let i = open; i < source.length; i++) {
    const ch = source[i];
    if (ch === "(" || ch === "[" || ch === "{") depth++;
    else if (ch === ")" || ch === "]" || ch === "}") {
      depth--;
      if (depth === 0) return false;
    } else if (depth === 1 && (ch === "=" || (ch === "." && source.startsWith("...", i)))) return true;
  }
  return false;
}
