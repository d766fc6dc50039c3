import type { ClientResult, ConnectionLocation } from "../backplane/backplane.js";

/**
 * Client results, on the side of the node that asks: `clients.client(id).invoke(...)` sends the client an
 * Invocation with an id of this node's and waits here for its Completion, which comes from whichever node
 * holds the connection when the client answers (HubEndpoint routes it by the id). Each call ends exactly
 * once: with the client's value or error, or with a {@link ClientResultError} when the connection does not
 * exist, ends first, its node dies, the timeout passes or the caller's signal aborts.
 *
 * Ids are `s:<nodeId>:<n>`. The official clients number their own invocations and streams with decimal
 * strings, so the two never collide; and the node that receives the answer reads from the id where to send it.
 */
export class ClientResults {
  private readonly pending = new Map<string, PendingResult>();
  private counter = 0;
  private watch: NodeJS.Timeout | undefined;
  private watching = false;

  constructor(
    private readonly nodeId: string,
    /** Where the registry says a connection lives; undefined without a shared registry (one node). */
    private readonly locate: ((connectionId: string) => Promise<ConnectionLocation>) | undefined,
    /** How often calls waiting longer than this are checked against the registry. */
    private readonly watchIntervalMs = 1000,
  ) {}

  /** Calls waiting for an answer. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Starts a call: `send` writes the Invocation with the id given (resolving with how many connections it
   * reached). Resolves with the client's result.
   */
  async invoke(
    connectionId: string,
    method: string,
    send: (invocationId: string) => Promise<{ connections: number }>,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<unknown> {
    options.signal?.throwIfAborted();
    const invocationId = `s:${this.nodeId}:${++this.counter}`;
    // Registered before the send: a local client may answer before the send's promise settles.
    const answer = new Promise<unknown>((resolve, reject) => {
      const entry: PendingResult = { connectionId, method, resolve, reject, startedAt: Date.now() };
      entry.timer = setTimeout(
        () =>
          this.settle(invocationId, {
            error: new ClientResultError(
              "timeout",
              `The client did not answer '${method}' within ${options.timeoutMs} ms (connection '${connectionId}').`,
            ),
          }),
        Math.min(options.timeoutMs, MAX_TIMER_MS),
      );
      if (options.signal) {
        const signal = options.signal;
        const onAbort = () =>
          this.settle(invocationId, {
            error: new ClientResultError("canceled", `The call of '${method}' on the client was canceled.`, {
              cause: signal.reason,
            }),
          });
        signal.addEventListener("abort", onAbort, { once: true });
        entry.unlisten = () => signal.removeEventListener("abort", onAbort);
      }
      this.pending.set(invocationId, entry);
    });
    answer.catch(() => undefined); // it may settle while the send is awaited: handled below, not unhandled
    try {
      const { connections } = await send(invocationId);
      if (connections === 0) {
        this.settle(invocationId, {
          error: new ClientResultError("no-connection", `Connection '${connectionId}' does not exist.`),
        });
      } else {
        this.startWatch();
      }
    } catch (err) {
      this.settle(invocationId, { error: err instanceof Error ? err : new Error(String(err)) });
    }
    return answer;
  }

  /** An answer arrived (from a local connection or through the backplane). Late or foreign ones are ignored. */
  complete(result: ClientResult): boolean {
    const entry = this.pending.get(result.invocationId);
    if (entry === undefined || entry.connectionId !== result.connectionId) return false;
    const { outcome } = result;
    if (!("error" in outcome)) this.settle(result.invocationId, outcome);
    else {
      const reason = outcome.connectionEnded === true ? "disconnected" : "client-error";
      this.settle(result.invocationId, { error: new ClientResultError(reason, outcome.error) });
    }
    return true;
  }

  /** Every call still waiting fails (this node stops). */
  close(): void {
    for (const id of [...this.pending.keys()]) {
      this.settle(id, {
        error: new ClientResultError("disconnected", "The server stopped before the client answered."),
      });
    }
  }

  private settle(invocationId: string, outcome: { result: unknown } | { error: Error }): void {
    const entry = this.pending.get(invocationId);
    if (entry === undefined) return;
    this.pending.delete(invocationId);
    clearTimeout(entry.timer);
    entry.unlisten?.();
    if ("error" in outcome) entry.reject(outcome.error);
    else entry.resolve(outcome.result);
    if (this.pending.size === 0) this.stopWatch();
  }

  /**
   * While calls wait, those waiting longer than the interval are checked against the registry: a
   * connection that is gone, or whose node died (its answer can never come), fails its calls now rather
   * than at their timeout. The answer of a connection that ends normally comes as an error from its node.
   */
  private startWatch(): void {
    if (this.locate === undefined || this.watch !== undefined) return;
    this.watch = setInterval(() => void this.check(), this.watchIntervalMs);
    this.watch.unref();
  }

  private stopWatch(): void {
    clearInterval(this.watch);
    this.watch = undefined;
  }

  private async check(): Promise<void> {
    if (this.watching || this.locate === undefined) return;
    this.watching = true;
    try {
      const due = Date.now() - this.watchIntervalMs;
      const byConnection = new Map<string, string[]>();
      for (const [id, entry] of this.pending) {
        if (entry.startedAt > due) continue;
        const ids = byConnection.get(entry.connectionId);
        if (ids) ids.push(id);
        else byConnection.set(entry.connectionId, [id]);
      }
      for (const [connectionId, ids] of byConnection) {
        let where: ConnectionLocation;
        try {
          where = await this.locate(connectionId);
        } catch {
          continue; // the registry is unreachable: the timeout still ends these calls
        }
        const error = lostConnection(connectionId, where);
        if (error) for (const id of ids) this.settle(id, { error });
      }
    } finally {
      this.watching = false;
    }
  }
}

/** The error for calls on a connection the registry says is gone; undefined while it may still answer. */
function lostConnection(connectionId: string, where: ConnectionLocation): ClientResultError | undefined {
  switch (where.kind) {
    case "here":
      return undefined;
    case "elsewhere":
      return where.nodeAlive
        ? undefined
        : new ClientResultError(
            "node-gone",
            `The server holding connection '${connectionId}' stopped before the client answered.`,
          );
    case "ended":
    case "unknown":
      return new ClientResultError("disconnected", `Connection '${connectionId}' disconnected.`);
  }
}

/** The longest delay setTimeout takes (a longer one would fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface PendingResult {
  connectionId: string;
  method: string;
  resolve(value: unknown): void;
  reject(error: Error): void;
  startedAt: number;
  timer?: NodeJS.Timeout;
  unlisten?: () => void;
}

/** Why a client result did not come. */
export type ClientResultFailure =
  /** The client's handler threw, or it had none (the message is the client's text). */
  | "client-error"
  /** No connection with that id is connected (on any node). */
  | "no-connection"
  /** The connection ended before the client answered. */
  | "disconnected"
  /** The node holding the connection died before the client answered. */
  | "node-gone"
  /** The client did not answer within the timeout. */
  | "timeout"
  /** The caller's signal aborted the call. */
  | "canceled";

/** A client result that did not come: `reason` says why, the message says it for people. */
export class ClientResultError extends Error {
  readonly code = "HUB_ERR_CLIENT_RESULT";
  constructor(
    readonly reason: ClientResultFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ClientResultError";
  }
}

/** Whether an invocation id is one this server made for a client result (not one of the client's own). */
export function isServerInvocationId(invocationId: string): boolean {
  return invocationId.startsWith("s:");
}

/** The node that made a server invocation id, awaiting its answer. */
export function askingNode(invocationId: string): string | undefined {
  const end = invocationId.lastIndexOf(":");
  return end > 2 ? invocationId.slice(2, end) : undefined;
}
