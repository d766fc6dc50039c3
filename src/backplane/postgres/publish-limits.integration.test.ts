/**
 * A message the log cannot carry (arguments nested deeper than MessagePack allows) fails whole: the publish
 * rejects with an error that names the method and the limit, and no connection, not even one on the
 * publishing node, has received it.
 */
import { describe, expect, it } from "vitest";
import { backplaneTestSchema } from "../../../test/support/backplane-nodes.js";
import { waitFor } from "../../../test/support/database.js";

const cluster = backplaneTestSchema();

function nested(levels: number): unknown {
  let value: unknown = "core";
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

describe("a publish the log cannot carry", () => {
  it("is refused before anyone has it, with the method and the limit named", async () => {
    const a = await cluster.start();
    const b = await cluster.start();
    await a.backplane.addConnection({ connectionId: "local", hub: "/chat", userId: "u" });
    await b.backplane.addConnection({ connectionId: "remote", hub: "/chat", userId: "u" });

    const deep = { target: "tooDeep", arguments: [nested(120)] };
    await expect(a.backplane.publish({ kind: "users", hub: "/chat", userIds: ["u"] }, deep)).rejects.toThrow(
      "The arguments of 'tooDeep' cannot be sent between nodes: Too deep objects in depth 101 (MessagePack allows 100 levels of nesting).",
    );

    // A message sent after it arrives, and nothing before it did.
    await a.backplane.publish(
      { kind: "users", hub: "/chat", userIds: ["u"] },
      { target: "ok", arguments: [1] },
    );
    await waitFor(() => b.recorder.of("remote").length === 1, "the next message on the other node");
    expect(a.recorder.of("local").map((m) => m.target)).toEqual(["ok"]);
    expect(b.recorder.of("remote").map((m) => m.target)).toEqual(["ok"]);
  });
});
