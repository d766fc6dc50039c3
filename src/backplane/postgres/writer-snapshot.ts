/**
 * What the writer of a log row had seen: the snapshot of its statement (`pg_current_snapshot()`, as text
 * `xmin:xmax:xip,…`), kept on the row. An append takes its snapshot when it starts, resolves the recipients
 * with it, then waits for the counter row; a connection whose registration commits meanwhile gets a head
 * below the row's seq, yet the row was resolved without it. The registering transaction's id (xid8) tells:
 * the registration was seen exactly when that id is visible in the row's snapshot. Likewise for a group's
 * member and the transaction of its join.
 */
import type { WriterView } from "../shared/local-index.js";

export class WriterSnapshot implements WriterView {
  private constructor(
    /** Every transaction below it had ended when the snapshot was taken. */
    private readonly xmin: number,
    /** No transaction from it on had ended. */
    private readonly xmax: number,
    /** Those in between that were still running. */
    private readonly running: readonly number[],
  ) {}

  /** Whether a committed transaction had committed before the snapshot was taken. */
  saw(transaction: number): boolean {
    if (transaction < this.xmin) return true;
    return transaction < this.xmax && !this.running.includes(transaction);
  }

  /**
   * The snapshot in a row's text form; undefined for a row without one (written before migration 12, or by
   * a node of an older version), whose writer is then trusted as before.
   * @throws on text that is not a snapshot.
   */
  static parse(text: string | null | undefined): WriterSnapshot | undefined {
    if (text === null || text === undefined) return undefined;
    // The rows of one statement share their snapshot: parse it once for them.
    if (text === lastText) return lastParsed;
    const [xmin, xmax, running] = text.split(":");
    const snapshot = new WriterSnapshot(
      transactionId(xmin, text),
      transactionId(xmax, text),
      running ? running.split(",").map((id) => transactionId(id, text)) : [],
    );
    lastText = text;
    lastParsed = snapshot;
    return snapshot;
  }
}

let lastText: string | undefined;
let lastParsed: WriterSnapshot | undefined;

/** A 64-bit transaction id (epoch and xid): exact as a number while the epoch stays below 2^21. */
function transactionId(value: string | undefined, text: string): number {
  const id = Number(value);
  if (value === undefined || value === "" || !Number.isSafeInteger(id)) {
    throw new Error(`Not a PostgreSQL snapshot: '${text}'.`);
  }
  return id;
}
