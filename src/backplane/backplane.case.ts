/**
 * The conformance suite every Backplane passes. A backplane's test file calls
 * `runBackplaneSpec({ name, createCluster })`; `createCluster(n)` returns n unstarted backplanes sharing
 * one cluster. Tests that need more nodes than `maxNodes` are not defined (the memory backplane has one).
 * The cases share a kit (backplane-spec-kit.ts): clusters, connections, and fences.
 */
import { describe, expect, it } from "vitest";
import { registryCases } from "./backplane-registry.case.js";
import type { SendTarget } from "./backplane.js";
import { createKit, HUB, type BackplaneSpecOptions, type SpecKit } from "./backplane-spec-kit.js";

export function runBackplaneSpec(options: BackplaneSpecOptions): void {
  describe(options.name, () => {
    const kit = createKit(options);
    sendingCases(kit);
    registryCases(kit);
  });
}

/** Who receives what, once, in order. */
function sendingCases({ cluster, on, connect, fence, got, msg, upTo }: SpecKit): void {
  it("sending to all reaches every connection of the hub on every node, once", async () => {
    const nodes = await cluster(upTo(3));
    const a1 = await connect(on(nodes, 0), "a1");
    const a2 = await connect(on(nodes, 0), "a2", "ann");
    const b1 = await connect(on(nodes, 1), "b1");
    const c1 = await connect(on(nodes, 2), "c1");
    const other = await connect(on(nodes, 1), "x1", "", "/other");
    const result = await nodes[0]!.backplane.publish({ kind: "all", hub: HUB }, msg("hello"));
    expect(result).toEqual({ connections: 4, nodes: nodes.length });
    await fence(nodes, [a1, a2, b1, c1, other]);
    for (const conn of [a1, a2, b1, c1]) expect(got(conn)).toEqual(["hello"]);
    expect(got(other)).toEqual([]);
  });

  it("sending to all except some connections leaves exactly those out", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1");
    const b1 = await connect(on(nodes, 1), "b1");
    const b2 = await connect(on(nodes, 1), "b2");
    const target: SendTarget = { kind: "all", hub: HUB, excludedConnectionIds: ["a1", "b2", "nobody"] };
    expect(await on(nodes, 1).backplane.publish(target, msg("m"))).toEqual({ connections: 1, nodes: 1 });
    await fence(nodes, [a1, b1, b2]);
    expect([got(a1), got(b1), got(b2)]).toEqual([[], ["m"], []]);
  });

  it("sending to connections reaches exactly the named ones once, even when named twice", async () => {
    const nodes = await cluster(upTo(3));
    const a1 = await connect(on(nodes, 0), "a1");
    const b1 = await connect(on(nodes, 1), "b1");
    const c1 = await connect(on(nodes, 2), "c1");
    const target: SendTarget = {
      kind: "connections",
      hub: HUB,
      connectionIds: ["b1", "c1", "b1", "ghost"],
    };
    expect(await nodes[0]!.backplane.publish(target, msg("m"))).toEqual({ connections: 2, nodes: upTo(2) });
    await fence(nodes, [a1, b1, c1]);
    expect([got(a1), got(b1), got(c1)]).toEqual([[], ["m"], ["m"]]);
  });

  it("sending to a user reaches each of the user's connections on every node, and no one else", async () => {
    const nodes = await cluster(upTo(2));
    const u1 = await connect(on(nodes, 0), "u1", "alice");
    const u2 = await connect(on(nodes, 1), "u2", "alice");
    const v1 = await connect(on(nodes, 1), "v1", "bob");
    const anon = await connect(on(nodes, 0), "n1");
    const result = await nodes[0]!.backplane.publish(
      { kind: "users", hub: HUB, userIds: ["alice"] },
      msg("m"),
    );
    expect(result).toEqual({ connections: 2, nodes: nodes.length });
    await fence(nodes, [u1, u2, v1, anon]);
    expect([got(u1), got(u2), got(v1), got(anon)]).toEqual([["m"], ["m"], [], []]);
  });

  it("sending to several users, or to a user nobody holds, counts what the registry held", async () => {
    const nodes = await cluster(upTo(2));
    const u1 = await connect(on(nodes, 0), "u1", "alice");
    const v1 = await connect(on(nodes, 1), "v1", "bob");
    const both: SendTarget = { kind: "users", hub: HUB, userIds: ["alice", "bob", "alice"] };
    expect(await nodes[0]!.backplane.publish(both, msg("both"))).toEqual({
      connections: 2,
      nodes: nodes.length,
    });
    const nobody: SendTarget = { kind: "users", hub: HUB, userIds: ["carol", ""] };
    expect(await nodes[0]!.backplane.publish(nobody, msg("none"))).toEqual({ connections: 0, nodes: 0 });
    await fence(nodes, [u1, v1]);
    expect([got(u1), got(v1)]).toEqual([["both"], ["both"]]);
  });

  it("sends to a user reach the connections she holds at each send, as they come and go across nodes, in order", async () => {
    const nodes = await cluster(upTo(3));
    const toAlice = (text: string) =>
      nodes[0]!.backplane.publish({ kind: "users", hub: HUB, userIds: ["alice"] }, msg(text));
    // A backplane may remember where a user was (Redis does): what it remembered must neither miss her
    // new connections nor reach the ones she closed.
    const b1 = await connect(on(nodes, 1), "b1", "alice");
    expect(await toAlice("1")).toEqual({ connections: 1, nodes: 1 });
    const c1 = await connect(on(nodes, 2), "c1", "alice");
    const bothNodes = new Set([on(nodes, 1), on(nodes, 2)]).size;
    expect(await toAlice("2")).toEqual({ connections: 2, nodes: bothNodes });
    // A publish counts at once and delivers a moment later: b1 ends only once it has what it was counted for.
    await fence(nodes, [b1, c1]);
    await on(nodes, 1).backplane.removeConnection(HUB, "b1");
    expect(await toAlice("3")).toEqual({ connections: 1, nodes: 1 });
    const b2 = await connect(on(nodes, 1), "b2", "alice");
    const burst = ["4", "5", "6", "7", "8"];
    const results = await Promise.all(burst.map(toAlice));
    expect(results).toEqual(burst.map(() => ({ connections: 2, nodes: bothNodes })));
    await fence(nodes, [c1, b2]);
    expect([got(b1), got(c1), got(b2)]).toEqual([["1", "2"], ["2", "3", ...burst], burst]);
  });

  it("sending to a group reaches its members on every node and nobody else", async () => {
    const nodes = await cluster(upTo(3));
    const [a1, b1, c1, c2] = [
      await connect(on(nodes, 0), "a1"),
      await connect(on(nodes, 1), "b1"),
      await connect(on(nodes, 2), "c1"),
      await connect(on(nodes, 2), "c2"),
    ];
    for (const id of ["a1", "b1", "c1"]) await on(nodes, 2).backplane.addToGroup(HUB, id, "room");
    const result = await nodes[0]!.backplane.publish(
      { kind: "groups", hub: HUB, groups: ["room"] },
      msg("m"),
    );
    expect(result).toEqual({ connections: 3, nodes: nodes.length });
    await fence(nodes, [a1, b1, c1, c2]);
    expect([got(a1), got(b1), got(c1), got(c2)]).toEqual([["m"], ["m"], ["m"], []]);
  });

  it("sending to several groups reaches a member of two of them once, and honours exclusions", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1");
    const b1 = await connect(on(nodes, 1), "b1");
    const b2 = await connect(on(nodes, 1), "b2");
    await nodes[0]!.backplane.addToGroup(HUB, "a1", "red");
    await nodes[0]!.backplane.addToGroup(HUB, "a1", "blue");
    await nodes[0]!.backplane.addToGroup(HUB, "b1", "blue");
    await nodes[0]!.backplane.addToGroup(HUB, "b2", "red");
    const sender = nodes[0]!.backplane;
    expect(await sender.publish({ kind: "groups", hub: HUB, groups: ["red", "blue"] }, msg("both"))).toEqual({
      connections: 3,
      nodes: nodes.length,
    });
    const except: SendTarget = {
      kind: "groups",
      hub: HUB,
      groups: ["red", "blue"],
      excludedConnectionIds: ["b1", "a1"],
    };
    expect(await sender.publish(except, msg("except"))).toEqual({ connections: 1, nodes: 1 });
    await fence(nodes, [a1, b1, b2]);
    expect([got(a1), got(b1), got(b2)]).toEqual([["both"], ["both"], ["both", "except"]]);
  });

  it("the same group name in two hubs is two groups", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1", "", "/one");
    const b1 = await connect(on(nodes, 1), "b1", "", "/two");
    await nodes[0]!.backplane.addToGroup("/one", "a1", "g");
    await nodes[0]!.backplane.addToGroup("/two", "b1", "g");
    await nodes[0]!.backplane.publish({ kind: "groups", hub: "/two", groups: ["g"] }, msg("two"));
    await fence(nodes, [a1, b1]);
    expect([got(a1), got(b1)]).toEqual([[], ["two"]]);
  });

  it("a connection added after a message was sent does not receive it", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 1), "a1", "alice");
    await nodes[0]!.backplane.publish({ kind: "all", hub: HUB }, msg("early"));
    await nodes[0]!.backplane.publish({ kind: "users", hub: HUB, userIds: ["alice"] }, msg("early-user"));
    const a2 = await connect(on(nodes, 1), "a2", "alice");
    await nodes[0]!.backplane.publish({ kind: "users", hub: HUB, userIds: ["alice"] }, msg("late"));
    await fence(nodes, [a1, a2]);
    expect([got(a1), got(a2)]).toEqual([["early", "early-user", "late"], ["late"]]);
  });

  it("messages from one sender reach each recipient in publish order", async () => {
    const nodes = await cluster(upTo(2));
    const a1 = await connect(on(nodes, 0), "a1", "alice");
    const b1 = await connect(on(nodes, 1), "b1", "alice");
    await nodes[0]!.backplane.addToGroup(HUB, "b1", "room");
    await nodes[0]!.backplane.addToGroup(HUB, "a1", "room");
    const targets: SendTarget[] = [
      { kind: "all", hub: HUB },
      { kind: "users", hub: HUB, userIds: ["alice"] },
      { kind: "groups", hub: HUB, groups: ["room"] },
      { kind: "connections", hub: HUB, connectionIds: ["a1", "b1"] },
    ];
    const sends = Array.from({ length: 400 }, (_, i) =>
      on(nodes, 1).backplane.publish(targets[i % 4]!, msg(i)),
    );
    await Promise.all(sends);
    await fence(nodes, [a1, b1]);
    const expected = Array.from({ length: 400 }, (_, i) => i);
    expect([got(a1), got(b1)]).toEqual([expected, expected]);
  });

  it("messages from several senders each keep their order, and none is lost or repeated", async () => {
    const nodes = await cluster(upTo(3));
    const conns = [
      await connect(on(nodes, 0), "a1"),
      await connect(on(nodes, 1), "b1"),
      await connect(on(nodes, 2), "c1"),
    ];
    await Promise.all(
      nodes.map((node, n) =>
        Promise.all(
          Array.from({ length: 150 }, (_, i) =>
            node.backplane.publish({ kind: "all", hub: HUB }, msg(`${n}:${i}`)),
          ),
        ),
      ),
    );
    await fence(nodes, conns);
    for (const conn of conns) {
      const values = got(conn) as string[];
      expect(values).toHaveLength(150 * nodes.length);
      for (let n = 0; n < nodes.length; n++) {
        const mine = values.filter((v) => v.startsWith(`${n}:`));
        expect(mine).toEqual(Array.from({ length: 150 }, (_, i) => `${n}:${i}`));
      }
    }
  });

  it("a message's arguments cross nodes intact", async () => {
    const nodes = await cluster(upTo(2));
    const b1 = await connect(on(nodes, 1), "b1");
    const args = [
      "héllo ✓ 日本",
      42,
      -1.5,
      true,
      null,
      { nested: { list: [1, "two", { three: 3 }] } },
      new Uint8Array([0, 1, 254, 255]),
      new Date(1_700_000_000_000),
    ];
    await nodes[0]!.backplane.publish(
      { kind: "connections", hub: HUB, connectionIds: ["b1"] },
      { target: "many", arguments: args },
    );
    await fence(nodes, [b1]);
    const received = on(nodes, 1)
      .recorder.received.get(`${HUB}\nb1`)!
      .find((m) => m.target === "many")!;
    expect(received.arguments).toEqual(args);
  });
}
