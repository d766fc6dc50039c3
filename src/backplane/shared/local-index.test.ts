import { describe, expect, it } from "vitest";
import { LocalIndex } from "./local-index.js";
import { TargetKind, type DecodedTarget } from "./targets.js";

const HUB = "/hub";
const users = (...ids: string[]): DecodedTarget => ({ kind: TargetKind.users, ids, excluded: [] });
const groups = (...ids: string[]): DecodedTarget => ({ kind: TargetKind.groups, ids, excluded: [] });

/** Adds a connection whose registration is complete (it receives rows after seq 0). */
function addRegistered(index: LocalIndex, connectionId: string, userId: string): void {
  index.add(HUB, connectionId, userId).sinceSeq = 0;
}

describe("LocalIndex", () => {
  it("finds a user's connections whether the user has one or several, and forgets them one by one", () => {
    const index = new LocalIndex();
    addRegistered(index, "a", "ann");
    expect(index.resolve(1, HUB, users("ann"))).toEqual(["a"]);
    addRegistered(index, "b", "ann");
    addRegistered(index, "c", "ann");
    expect(index.resolve(1, HUB, users("ann")).sort()).toEqual(["a", "b", "c"]);
    index.remove(HUB, "b");
    index.remove(HUB, "a");
    expect(index.resolve(1, HUB, users("ann"))).toEqual(["c"]);
    index.remove(HUB, "c");
    expect(index.resolve(1, HUB, users("ann"))).toEqual([]);
    expect(index.size).toBe(0);
  });

  it("gives a row only to the connections whose registration its writer had seen, parked ones too", () => {
    const index = new LocalIndex();
    const sawUpTo = (registration: number) => ({ saw: (r: number) => r <= registration });
    index.markReady(index.add(HUB, "old", "ann"), 0, 10);
    index.markReady(index.add(HUB, "new", "ann"), 5, 20);
    // Numbered after both registrations (seq 6), but resolved before the second committed.
    expect(index.resolve(6, HUB, users("ann"), undefined, sawUpTo(15))).toEqual(["old"]);
    expect(index.resolve(6, HUB, users("ann"), undefined, sawUpTo(20)).sort()).toEqual(["new", "old"]);
    expect(index.resolve(6, HUB, users("ann")).sort()).toEqual(["new", "old"]); // a writer that does not tell
    const pending = index.add(HUB, "late", "ann");
    const message = { target: "m", arguments: [] };
    index.park(pending, { seq: 7, message, writer: sawUpTo(25) });
    index.park(pending, { seq: 8, message, writer: sawUpTo(40) });
    expect(index.markReady(pending, 6, 30).map((row) => row.seq)).toEqual([8]);
  });

  it("gives a group's row to a member only if its writer saw the join, by whichever group it is a member", () => {
    const index = new LocalIndex();
    const sawUpTo = (transaction: number) => ({ saw: (t: number) => t <= transaction });
    index.markReady(index.add(HUB, "a", ""), 0, 1);
    index.applyOwnGroupChange(HUB, "a", "room", true, 3, 10);
    index.applyGroupChange(HUB, "a", "hall", true, 4, 20);
    expect(index.resolve(5, HUB, groups("room"), undefined, sawUpTo(15))).toEqual(["a"]);
    expect(index.resolve(5, HUB, groups("hall"), undefined, sawUpTo(15))).toEqual([]);
    expect(index.resolve(5, HUB, groups("hall", "room"), undefined, sawUpTo(15))).toEqual(["a"]);
    // Left and joined again by a change nobody tells of: no check for it any more.
    index.applyGroupChange(HUB, "a", "hall", false, 6);
    index.applyGroupChange(HUB, "a", "hall", true, 7);
    expect(index.resolve(8, HUB, groups("hall"), undefined, sawUpTo(15))).toEqual(["a"]);
  });

  it("adding a connection again under the same user keeps one entry for it", () => {
    const index = new LocalIndex();
    addRegistered(index, "a", "ann");
    addRegistered(index, "a", "ann");
    expect(index.resolve(1, HUB, users("ann"))).toEqual(["a"]);
    index.remove(HUB, "a");
    expect(index.resolve(1, HUB, users("ann"))).toEqual([]);
  });

  it("gives each connection its own groups: a change to one leaves the others without groups", () => {
    const index = new LocalIndex();
    addRegistered(index, "a", "");
    addRegistered(index, "b", "");
    index.applyGroupChange(HUB, "a", "room", true, 5);
    expect([...index.get(HUB, "a")!.groups]).toEqual(["room"]);
    expect([...index.get(HUB, "b")!.groups]).toEqual([]);
    expect(index.get(HUB, "b")!.groupSeqs.size).toBe(0);
    expect(index.resolve(6, HUB, groups("room"))).toEqual(["a"]);
  });

  it("orders group changes by seq, and keeps them when the connection is added again", () => {
    const index = new LocalIndex();
    addRegistered(index, "a", "");
    index.applyGroupChange(HUB, "a", "room", true, 5);
    index.applyGroupChange(HUB, "a", "room", false, 4); // older than the add: ignored
    expect(index.resolve(6, HUB, groups("room"))).toEqual(["a"]);
    addRegistered(index, "a", "");
    expect(index.resolve(6, HUB, groups("room"))).toEqual(["a"]);
    index.applyGroupChange(HUB, "a", "room", false, 7);
    expect(index.resolve(8, HUB, groups("room"))).toEqual([]);
    expect(index.get(HUB, "a")!.groupSeqs.get("room")).toBe(7);
  });

  it("orders its own changes against the log by the head they held: rows up to it are older", () => {
    const index = new LocalIndex();
    addRegistered(index, "a", "");
    index.applyOwnGroupChange(HUB, "a", "room", true, 5); // joined here while the head was 5
    index.applyGroupChange(HUB, "a", "room", false, 5); // another node's leave, numbered before the join
    expect(index.resolve(6, HUB, groups("room"))).toEqual(["a"]);
    index.applyOwnGroupChange(HUB, "a", "room", false, 5); // left here, head unchanged: still applies
    expect(index.resolve(6, HUB, groups("room"))).toEqual([]);
    index.applyOwnGroupChange(HUB, "a", "room", true, 5);
    index.applyGroupChange(HUB, "a", "room", false, 6); // another node's leave after the join
    expect(index.resolve(7, HUB, groups("room"))).toEqual([]);
    index.applyOwnGroupChange(HUB, "a", "room", true, 4); // older than the leave it raced with: ignored
    expect(index.resolve(7, HUB, groups("room"))).toEqual([]);
  });
});
