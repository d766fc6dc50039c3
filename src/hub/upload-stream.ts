import { HubError } from "./hub-error.js";

/**
 * One client-to-server stream: the items the client sends with StreamItem messages, ending with its
 * Completion. The hub method reads it with `for await`. A client-side error ends the iteration with a
 * HubError carrying the client's message.
 */
export class UploadStream<T = unknown> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: Error) => void } | undefined;
  private ended = false;
  private error: Error | undefined;

  /** Items received and not read yet; the connection closes a client that runs too far ahead. */
  get backlog(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.ended) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  /** Ends the stream, normally or with the client's error text. */
  end(error?: string): void {
    if (this.ended) return;
    this.ended = true;
    if (error !== undefined) this.error = new HubError(error);
    if (this.waiting) {
      const { resolve, reject } = this.waiting;
      this.waiting = undefined;
      if (this.error) reject(this.error);
      else resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.items.length > 0) return Promise.resolve({ value: this.items.shift()!, done: false });
        if (this.ended)
          return this.error ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
      },
      return: () => {
        this.ended = true;
        this.items.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
