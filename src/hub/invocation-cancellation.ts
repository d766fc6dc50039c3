/**
 * The cancellation of one invocation or stream: aborted when the client cancels it, when the connection
 * closes, or when it finishes. Its AbortController is made only when someone reads `signal`: making one,
 * and above all aborting it (which builds an AbortError with a stack), was about a sixth of the CPU an
 * invocation cost, and most methods never look at their signal.
 */
export class InvocationCancellation {
  private controller: AbortController | undefined;
  private cancelled = false;

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.cancelled) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.controller?.abort();
  }
}

/** Where a hub instance finds the cancellation of the invocation it serves (read by Hub's `signal`). */
export const invocationCancellation = Symbol("invocationCancellation");
