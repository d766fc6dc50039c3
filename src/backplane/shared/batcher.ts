/**
 * Runs the calls made while one statement is in flight together, as the next statement: a burst of
 * connects (a node restarting, clients reconnecting after a deploy) then costs a few statements and
 * commits instead of one each. At most one statement is in flight, so calls run in the order they came,
 * except that a call whose key is already in the batch waits for the next one (one statement must not
 * touch the same row twice). Without a key, a batch is simply the oldest calls: a send queue thousands
 * long is then not walked again for every batch.
 */
export class Batcher<T, R> {
  private queue: Pending<T, R>[] = [];
  private scheduled = false;
  /** The statement in flight (set while batches run): settles once its calls have their results. */
  private inFlight: Promise<void> | undefined;

  constructor(
    /** Runs one batch; returns, in order, each call's result or the error that call alone gets. */
    private readonly run: (items: T[]) => Promise<(R | Error)[]>,
    /** What one statement must not touch twice; undefined when no two calls collide. */
    private readonly key: ((item: T) => string) | undefined,
    private readonly maxBatch: number,
    /**
     * When the first statement after a quiet spell goes out. "microtask": once the current callback is
     * done (sends: no added latency). "turn": once this turn of the event loop has run its I/O callbacks
     * (registry writes: a burst of handshakes read together shares the first statement too).
     */
    private readonly gather: "microtask" | "turn" = "microtask",
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once the statement in flight now, if any, has run and its calls have their results. */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight) return;
    this.scheduled = true;
    const flush = () => {
      this.scheduled = false;
      void this.flush();
    };
    if (this.gather === "turn") setImmediate(flush);
    else queueMicrotask(flush);
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      this.inFlight = this.runBatch(this.take());
      await this.inFlight;
    }
    this.inFlight = undefined;
  }

  private async runBatch(batch: Pending<T, R>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((pending) => pending.item));
      batch.forEach((pending, i) => {
        const result = results[i];
        if (result instanceof Error) pending.reject(result);
        else pending.resolve(result as R);
      });
    } catch (err) {
      for (const pending of batch) pending.reject(err);
    }
  }

  private take(): Pending<T, R>[] {
    if (this.key === undefined) return this.queue.splice(0, this.maxBatch);
    const batch: Pending<T, R>[] = [];
    const keys = new Set<string>();
    const later: Pending<T, R>[] = [];
    for (const pending of this.queue) {
      const key = this.key(pending.item);
      if (batch.length < this.maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(pending);
      } else {
        later.push(pending);
      }
    }
    this.queue = later;
    return batch;
  }
}

interface Pending<T, R> {
  item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}
