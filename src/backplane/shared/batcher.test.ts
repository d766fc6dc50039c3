import { describe, expect, it } from "vitest";
import { Batcher } from "./batcher.js";

/** A batcher whose statements are recorded and answer each item with itself upper-cased. */
function recording(maxBatch = 100) {
  const batches: string[][] = [];
  const batcher = new Batcher<string, string>(
    async (items) => {
      batches.push(items);
      await new Promise((resolve) => setTimeout(resolve, 5));
      return items.map((item) =>
        item.startsWith("bad") ? new Error(`refused ${item}`) : item.toUpperCase(),
      );
    },
    (item) => item.replace(/#.*/, ""), // "a#2" has the same key as "a"
    maxBatch,
  );
  return { batches, batcher };
}

describe("Batcher", () => {
  it("runs the calls of one turn together, and those made meanwhile as the next batch", async () => {
    const { batches, batcher } = recording();
    const first = [batcher.submit("a"), batcher.submit("b")];
    await Promise.resolve(); // the first batch is in flight now
    const second = [batcher.submit("c"), batcher.submit("d")];
    expect(await Promise.all([...first, ...second])).toEqual(["A", "B", "C", "D"]);
    expect(batches).toEqual([
      ["a", "b"],
      ["c", "d"],
    ]);
  });

  it("settles each call with its own result or error", async () => {
    const { batcher } = recording();
    const outcomes = await Promise.allSettled([batcher.submit("ok"), batcher.submit("bad1")]);
    expect(outcomes).toEqual([
      { status: "fulfilled", value: "OK" },
      { status: "rejected", reason: new Error("refused bad1") },
    ]);
  });

  it("puts a second call with the same key, and calls past the limit, into a later batch", async () => {
    const { batches, batcher } = recording(2);
    await Promise.all(["a", "a#2", "b", "c"].map((item) => batcher.submit(item)));
    expect(batches).toEqual([
      ["a", "b"],
      ["a#2", "c"],
    ]);
  });

  it("without a key, takes the oldest calls up to the limit, in order, equal items included", async () => {
    const batches: string[][] = [];
    const batcher = new Batcher<string, string>(
      async (items) => {
        batches.push(items);
        return items;
      },
      undefined,
      2,
    );
    const items = ["a", "a", "b", "c", "c"];
    expect(await Promise.all(items.map((item) => batcher.submit(item)))).toEqual(items);
    expect(batches).toEqual([["a", "a"], ["b", "c"], ["c"]]);
  });

  it("rejects every call of a batch whose statement fails, and goes on with the next", async () => {
    let fail = true;
    const batcher = new Batcher<string, string>(
      async (items) => {
        if (fail) {
          fail = false;
          throw new Error("database down");
        }
        return items;
      },
      (item) => item,
      10,
    );
    const failed = [batcher.submit("a"), batcher.submit("b")];
    await Promise.resolve();
    const later = batcher.submit("c");
    expect(await Promise.allSettled(failed)).toMatchObject([{ status: "rejected" }, { status: "rejected" }]);
    expect(await later).toBe("c");
  });

  it("settled() waits for the statement in flight only, not for calls made after it", async () => {
    const { batches, batcher } = recording();
    await batcher.settled(); // nothing in flight
    const done: string[] = [];
    void batcher.submit("a").then(() => done.push("a"));
    await Promise.resolve(); // "a" is in flight
    void batcher.submit("b").then(() => done.push("b"));
    await batcher.settled();
    expect(done).toEqual(["a"]);
    expect(batches).toEqual([["a"], ["b"]]);
  });

  it("gathers per turn of the event loop when asked: calls from separate callbacks share the first statement", async () => {
    const batchesWith = async (gather: "microtask" | "turn") => {
      const batches: string[][] = [];
      const batcher = new Batcher<string, string>(
        async (items) => {
          batches.push(items);
          return items;
        },
        (item) => item,
        10,
        gather,
      );
      // Two callbacks of one turn, one after the other (two handshakes read at once). Immediates queued
      // together run in the same turn; two timers might not (the second can come due a millisecond later).
      await new Promise((resolve) => {
        setImmediate(() => void batcher.submit("a"));
        setImmediate(() => void batcher.submit("b").then(resolve));
      });
      return batches;
    };
    expect(await batchesWith("microtask")).toEqual([["a"], ["b"]]);
    expect(await batchesWith("turn")).toEqual([["a", "b"]]);
  });
});
