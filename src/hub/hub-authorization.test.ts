import { describe, expect, it } from "vitest";
import { applyAuthorization, type HubAuthorization } from "./hub-authorization.js";
import { Hub, type HubDefinition } from "./hub.js";
import { buildMethodTable } from "./method-table.js";

const isAdmin = (user: { claims?: Readonly<Record<string, unknown>> }) => user.claims?.role === "admin";

function apply(definition: HubDefinition) {
  const methods = buildMethodTable(definition, Hub.prototype);
  return { connect: applyAuthorization("/hubs/room", definition, methods), methods };
}

describe("applyAuthorization", () => {
  it("attaches method rules by name, ignoring case, and returns the connect rule", () => {
    const connect = () => true;
    class RoomHub extends Hub {
      static authorize: HubAuthorization = { connect, methods: { CLOSEROOM: isAdmin } };
      closeRoom(): void {}
      join(): void {}
    }
    const { connect: found, methods } = apply(RoomHub);
    expect(found).toBe(connect);
    expect(methods.get("closeroom")?.authorize).toBe(isAdmin);
    expect(methods.get("join")?.authorize).toBeUndefined();
  });

  it("reads the rules of a hub given as an object, and leaves a method called authorize alone", () => {
    const { methods } = apply({ authorize: { methods: { kick: isAdmin } }, kick() {} });
    expect(methods.get("kick")?.authorize).toBe(isAdmin);
    const withMethod = apply({ authorize: () => "a method", kick() {} });
    expect(withMethod.connect).toBeUndefined();
    expect(withMethod.methods.has("authorize")).toBe(true);
  });

  it.each<[string, unknown, string]>([
    [
      "a rule for a missing method",
      { methods: { kik: isAdmin } },
      "'authorize.methods.kik' names no method of the hub.",
    ],
    [
      "a rule that is not a function",
      { methods: { kick: "admin" } },
      "'authorize.methods.kick' must be a function of the user that returns a boolean.",
    ],
    [
      "a connect rule that is not a function",
      { connect: true },
      "'authorize.connect' must be a function of the user that returns a boolean.",
    ],
    ["an unknown key", { conect: isAdmin }, "'authorize.conect' is not known (use 'connect' and 'methods')."],
    ["methods that are not an object", { methods: 1 }, "'authorize.methods' must map method names to rules."],
    [
      "rules that are not an object",
      "admin",
      "'authorize' must be an object with 'connect' and/or 'methods' rules.",
    ],
  ])("stops start-up for %s, naming the hub and the rule", (_, authorize, message) => {
    expect(() => apply({ authorize, kick() {} } as HubDefinition)).toThrow(
      new TypeError(`The hub at '/hubs/room': ${message}`),
    );
  });
});
