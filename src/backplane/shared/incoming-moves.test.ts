import { afterEach, describe, expect, it, vi } from "vitest";
import { ConnectionMoveError } from "../backplane.js";
import { IncomingMoves, moveKey, type IncomingMove } from "./incoming-moves.js";

const HUB = "/hub";
const move = (connectionId: string, from = "a"): IncomingMove => ({
  hub: HUB,
  connectionId,
  from,
  local: undefined,
});

describe("IncomingMoves", () => {
  afterEach(() => vi.useRealTimers());

  it("resolves a takeover with the state, once", async () => {
    const forgotten: IncomingMove[] = [];
    const moves = new IncomingMoves<IncomingMove>((m) => forgotten.push(m));
    const key = moveKey(HUB, "c1");
    const begin = vi.fn();
    const result = moves.start(key, move("c1"), begin);
    expect(begin).toHaveBeenCalledOnce();
    expect(moves.get(key)?.connectionId).toBe("c1");
    moves.settle(key, new Uint8Array([1, 2]));
    await expect(result).resolves.toEqual(new Uint8Array([1, 2]));
    expect(moves.get(key)).toBeUndefined();
    expect(moves.fail(key, "too late")).toBe(false);
    expect(forgotten).toEqual([]);
  });

  it("refuses a second takeover of the same connection without starting it", async () => {
    const moves = new IncomingMoves<IncomingMove>(() => {});
    const key = moveKey(HUB, "c1");
    void moves.start(key, move("c1"), () => {});
    const begin = vi.fn();
    const second = moves.start(key, move("c1"), begin);
    await expect(second).rejects.toThrow(new ConnectionMoveError("The connection is already moving here."));
    expect(begin).not.toHaveBeenCalled();
  });

  it("forgets a failed takeover before rejecting it with the reason", async () => {
    const order: string[] = [];
    const moves = new IncomingMoves<IncomingMove>((m) => order.push(`forget ${m.connectionId}`));
    const key = moveKey(HUB, "c1");
    const result = moves.start(key, move("c1"), () => {});
    result.catch(() => order.push("rejected"));
    expect(moves.fail(key, "it refused")).toBe(true);
    const err = await result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionMoveError);
    expect((err as Error).message).toBe("The connection could not be taken over: it refused.");
    expect(order).toEqual(["forget c1", "rejected"]);
  });

  it("fails at the deadline, the latest one replacing the earlier", async () => {
    vi.useFakeTimers();
    const moves = new IncomingMoves<IncomingMove>(() => {});
    const key = moveKey(HUB, "c1");
    const result = moves.start(key, move("c1"), () => {});
    const reason = result.catch((e: Error) => e.message);
    moves.failAfter(key, 100, "first");
    vi.advanceTimersByTime(50);
    moves.failAfter(key, 200, "second");
    vi.advanceTimersByTime(199);
    expect(moves.get(key)).toBeDefined();
    vi.advanceTimersByTime(1);
    await expect(reason).resolves.toBe("The connection could not be taken over: second.");
  });

  it("fails the takeovers from a node that is gone, and all of them when stopping", async () => {
    const moves = new IncomingMoves<IncomingMove>(() => {});
    const reasons = (key: string, from: string) =>
      moves.start(key, move(key, from), () => {}).catch((e: Error) => e.message);
    const fromA = reasons("c1", "a");
    const fromB = reasons("c2", "b");
    moves.nodeGone("a");
    await expect(fromA).resolves.toBe("The connection could not be taken over: that node is gone.");
    expect(moves.get("c2")).toBeDefined();
    moves.stop();
    await expect(fromB).resolves.toBe("The connection could not be taken over: this node is stopping.");
  });
});
