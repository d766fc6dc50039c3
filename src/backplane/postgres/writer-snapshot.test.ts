import { describe, expect, it } from "vitest";
import { WriterSnapshot } from "./writer-snapshot.js";

describe("WriterSnapshot", () => {
  it("saw the transactions that had ended before it, and none running or begun after", () => {
    const snapshot = WriterSnapshot.parse("740:745:741,743")!;
    expect([739, 740, 742, 744].map((id) => snapshot.saw(id))).toEqual([true, true, true, true]);
    expect([741, 743, 745, 900].map((id) => snapshot.saw(id))).toEqual([false, false, false, false]);
  });

  it("reads a snapshot with nothing running, and 64-bit ids past the first epoch", () => {
    const id = 5 * 2 ** 32 + 17;
    const snapshot = WriterSnapshot.parse(`${id}:${id}:`)!;
    expect(snapshot.saw(id - 1)).toBe(true);
    expect(snapshot.saw(id)).toBe(false);
  });

  it("has nothing to say for a row written without one", () => {
    expect(WriterSnapshot.parse(null)).toBeUndefined();
  });

  it("refuses text that is not a snapshot", () => {
    for (const text of ["", "740", "740:x:", "740:745:741,,743"]) {
      expect(() => WriterSnapshot.parse(text), text).toThrow(/Not a PostgreSQL snapshot/);
    }
  });
});
