// A server stream cancelled before its first item still ends cleanly: the generator's `finally` runs,
// whether what it awaits listens to `this.signal` (at once) or not (when that await ends).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hub } from "../../src/index.js";
import { connectClient, transportMatrix, type TestClient } from "../support/hub-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });

class SlowStartHub extends Hub {
  /** Waits before its first item, listening to the signal: cancelled, it stops waiting at once. */
  async *listening(tag: string) {
    try {
      await sleep(60_000, this.signal);
      if (!this.signal.aborted) yield 1;
    } finally {
      await this.clients.caller.send("cleaned", tag);
    }
  }
  /** Waits before its first item without listening: cancelled, its `finally` runs when the wait ends. */
  async *deaf(tag: string) {
    try {
      await sleep(300);
      yield 1;
      yield 2;
    } finally {
      await this.clients.caller.send("cleaned", tag);
    }
  }
}

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ hubs: { "/slow": SlowStartHub } });
});
afterAll(() => server.close());

describe.each(transportMatrix)("over $transport with $protocol", ({ transport, protocol }) => {
  let client: TestClient;
  beforeAll(async () => {
    client = await connectClient(server.url("/slow"), ["cleaned"], { transport, protocol });
  });
  afterAll(() => client.stop());

  for (const method of ["Listening", "Deaf"]) {
    it(`runs the finally of a ${method.toLowerCase()} stream cancelled before its first item`, async () => {
      const items: unknown[] = [];
      const tag = `${method}-${transport}-${protocol}`;
      const before = client.received("cleaned").length;
      const subscription = client.connection.stream(method, tag).subscribe({
        next: (item) => items.push(item),
        error: () => {},
        complete: () => {},
      });
      await new Promise((resolve) => setTimeout(resolve, 50)); // the invocation is running on the server
      subscription.dispose(); // sends CancelInvocation
      const [cleaned] = await client.next("cleaned", before + 1);
      expect(cleaned).toBe(tag);
      expect(items).toEqual([]);
    });
  }
});
