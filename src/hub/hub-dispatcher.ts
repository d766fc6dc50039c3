import {
  MessageType,
  type CompletionMessage,
  type HubMessage,
  type InvocationMessage,
  type StreamInvocationMessage,
} from "../protocol/messages.js";
import { isServerInvocationId } from "./client-results.js";
import type { AuthorizationRule } from "./hub-authorization.js";
import type { HubConnection } from "./hub-connection.js";
import { HubError } from "./hub-error.js";
import { hubLog } from "./hub.log.js";
import { type Logger } from "../log.js";
import { InvocationCancellation } from "./invocation-cancellation.js";
import type { HubMethod } from "./method-table.js";
import type { HubOptions } from "./hub-options.js";
import type { HubMetrics } from "./hub-metrics.js";
import { UploadStream } from "./upload-stream.js";
import { contextOf, inSpan, markActiveSpanFailed, SpanKind, TraceAttributes } from "../tracing.js";

/**
 * Creates the hub instance that serves one invocation (context, clients, groups and signal filled in);
 * without a cancellation (an invocation the client does not await), the hub's signal is the connection's.
 */
export type HubActivator = (
  connection: HubConnection,
  cancellation?: InvocationCancellation,
) => Record<string, unknown>;

/**
 * Turns the messages of one connection into hub method calls and their results (ASP.NET Core's
 * DefaultHubDispatcher). Error texts are the .NET ones, which the official clients' users know.
 */
export class HubDispatcher {
  constructor(
    private readonly methods: Map<string, HubMethod>,
    private readonly activate: HubActivator,
    private readonly options: HubOptions,
    private readonly log: Logger,
    private readonly metrics: HubMetrics,
  ) {}

  dispatch(connection: HubConnection, message: HubMessage): Promise<void> | undefined {
    switch (message.type) {
      case MessageType.Invocation:
      case MessageType.StreamInvocation:
        return this.invoke(connection, message);
      case MessageType.StreamItem: {
        const upload = connection.uploads.get(message.invocationId);
        if (!upload) return undefined; // a stream the method stopped reading, or never had: ignore
        upload.push(message.item);
        if (upload.backlog > this.options.streamBufferCapacity) {
          connection.close(
            "Connection closed with an error. The client sent stream items faster than the hub read them.",
          );
        }
        return undefined;
      }
      case MessageType.Completion:
        // A client result's answer was taken when it arrived (HubConnection.takeAnswer).
        if (isServerInvocationId(message.invocationId)) return undefined;
        connection.uploads.get(message.invocationId)?.end(message.error);
        connection.uploads.delete(message.invocationId);
        return undefined;
      case MessageType.CancelInvocation:
        connection.invocations.get(message.invocationId)?.abort();
        return undefined;
      case MessageType.Close:
        connection.close();
        return undefined;
      case MessageType.Ping:
        connection.pingReceived = true;
        return undefined;
      default:
        return undefined; // Ack and Sequence never get here: the connection keeps their books itself.
    }
  }

  private invoke(
    connection: HubConnection,
    message: InvocationMessage | StreamInvocationMessage,
  ): Promise<void> | undefined {
    const { target, invocationId } = message;
    const method = this.methods.get(target.toLowerCase());
    if (!method) {
      hubLog.unknownMethod(this.log, connection.ids, target);
      if (invocationId) this.completeWithError(connection, invocationId, `Unknown hub method '${target}'`);
      return undefined;
    }
    if (method.authorize && !this.authorized(connection, method.authorize)) {
      hubLog.methodUnauthorized(this.log, connection.ids, target);
      if (invocationId) {
        this.completeWithError(
          connection,
          invocationId,
          `Failed to invoke '${target}' because user is unauthorized`,
        );
      }
      return undefined;
    }
    const streaming = message.type === MessageType.StreamInvocation;
    if (!streaming && method.isStreaming) {
      if (invocationId) {
        this.completeWithError(
          connection,
          invocationId,
          `The client attempted to invoke the streaming '${target}' method with a non-streaming invocation.`,
        );
      }
      return undefined;
    }
    const streamIds = message.streamIds ?? [];
    const provided = message.arguments.length + streamIds.length;
    if (provided < method.minArgs || provided > method.maxArgs) {
      const detail = `InvalidDataException: Invocation provides ${provided} argument(s) but target expects ${method.minArgs}.`;
      if (invocationId) {
        this.completeWithError(
          connection,
          invocationId,
          this.errorText(`Failed to invoke '${target}' due to an error on the server.`, detail),
        );
      }
      return undefined;
    }
    const uploads = streamIds.map((id) => {
      const upload = new UploadStream();
      connection.uploads.set(id, upload);
      return upload;
    });
    // A span per invocation, child of the trace the client sent in the message's headers (the .NET client's
    // `traceparent`), so the sends the method makes join it.
    const attributes = () => ({
      "rpc.system": "signalr",
      "rpc.service": connection.hub,
      "rpc.method": target,
      [TraceAttributes.connection]: connection.connectionId,
    });
    const run = (): Promise<void> =>
      inSpan(
        `${connection.hub}/${target}`,
        { kind: SpanKind.SERVER, attributes },
        contextOf(message.headers?.traceparent),
        () =>
          streaming
            ? this.runStream(connection, message as StreamInvocationMessage, method, uploads)
            : this.runInvocation(connection, message, method, uploads),
      );
    // Streams and methods reading upload streams must not hold a slot: the client's next messages feed them.
    if (streaming || uploads.length > 0) {
      void run();
      return undefined;
    }
    return this.withSlot(connection, run);
  }

  /** A rule that throws refuses: authorization fails closed. */
  private authorized(connection: HubConnection, rule: AuthorizationRule): boolean {
    const { userId, auth } = connection.request;
    try {
      return rule({ userId, claims: auth }) === true;
    } catch (err) {
      hubLog.authorizationRuleFailed(this.log, connection.ids, err);
      return false;
    }
  }

  /** Starts `run` in a free invocation slot; if there is none, resolves once one was free and `run` started. */
  private withSlot(connection: HubConnection, run: () => Promise<void>): Promise<void> | undefined {
    const start = (): void => {
      if (!connection.isConnected) return;
      connection.activeInvocations++;
      void run().finally(() => connection.releaseSlot());
    };
    if (connection.activeInvocations < this.options.maximumParallelInvocationsPerClient) {
      start();
      return undefined;
    }
    return connection.waitForSlot().then(start);
  }

  private async runInvocation(
    connection: HubConnection,
    message: InvocationMessage,
    method: HubMethod,
    uploads: UploadStream[],
  ): Promise<void> {
    const { target, invocationId } = message;
    const cancellation = this.track(connection, invocationId);
    try {
      const hub = this.activate(connection, cancellation);
      const result = await method.fn.apply(hub, [...message.arguments, ...uploads]);
      if (isAsyncIterable(result)) {
        void result[Symbol.asyncIterator]().return?.();
        if (invocationId) {
          this.completeWithError(
            connection,
            invocationId,
            `The client attempted to invoke the streaming '${target}' method with a non-streaming invocation.`,
          );
        }
        return;
      }
      if (invocationId && connection.isConnected) {
        connection.write(completion(invocationId, result === undefined ? {} : { result }));
      }
      this.metrics.invocationCompleted(connection.hub, "ok");
    } catch (err) {
      this.metrics.invocationCompleted(connection.hub, "error");
      hubLog.methodFailed(this.log, connection.ids, target, err);
      markActiveSpanFailed(err);
      if (invocationId) {
        this.completeWithError(
          connection,
          invocationId,
          this.errorText(`An unexpected error occurred invoking '${target}' on the server.`, err),
        );
      }
    } finally {
      this.untrack(connection, invocationId, uploads, message.streamIds);
    }
  }

  private async runStream(
    connection: HubConnection,
    message: StreamInvocationMessage,
    method: HubMethod,
    uploads: UploadStream[],
  ): Promise<void> {
    const { target, invocationId } = message;
    const cancellation = this.track(connection, invocationId)!;
    const signal = cancellation.signal;
    let itemsSent = 0;
    let iterator: AsyncIterator<unknown> | undefined;
    try {
      const hub = this.activate(connection, cancellation);
      const result = await method.fn.apply(hub, [...message.arguments, ...uploads]);
      if (!isAsyncIterable(result)) {
        this.completeWithError(
          connection,
          invocationId,
          `The client attempted to invoke the non-streaming '${target}' method with a streaming invocation.`,
        );
        return;
      }
      iterator = result[Symbol.asyncIterator]();
      for (;;) {
        const step = await nextOrAbort(iterator, signal);
        if (step === aborted || step.done) break;
        if (!connection.write({ type: MessageType.StreamItem, invocationId, item: step.value ?? null }))
          break;
        itemsSent++;
      }
      if (signal.aborted) void iterator.return?.()?.catch(() => undefined);
      // The spec wants a Completion even after a cancel; the official client ignores it then.
      if (connection.isConnected) connection.write(completion(invocationId, {}));
      this.metrics.invocationCompleted(connection.hub, "ok");
    } catch (err) {
      this.metrics.invocationCompleted(connection.hub, "error");
      hubLog.methodFailed(this.log, connection.ids, target, err);
      markActiveSpanFailed(err);
      // An error before the first item is an error of the invocation, as in .NET (whose methods throw
      // before they return their stream); after it, an error of the stream.
      const text =
        itemsSent === 0
          ? `An unexpected error occurred invoking '${target}' on the server.`
          : "An error occurred on the server while streaming results.";
      this.completeWithError(connection, invocationId, this.errorText(text, err));
    } finally {
      this.untrack(connection, invocationId, uploads, message.streamIds);
    }
  }

  private track(
    connection: HubConnection,
    invocationId: string | undefined,
  ): InvocationCancellation | undefined {
    if (!invocationId) return undefined;
    const cancellation = new InvocationCancellation();
    // The connection's close aborts every tracked invocation (HubConnection.onClose), so there is no
    // listener on its signal: an AbortSignal that was ever listened to stays ~1 KB for the connection's life.
    if (!connection.isConnected) cancellation.abort();
    connection.invocations.set(invocationId, cancellation);
    return cancellation;
  }

  private untrack(
    connection: HubConnection,
    invocationId: string | undefined,
    uploads: UploadStream[],
    streamIds?: string[],
  ): void {
    if (invocationId) {
      const cancellation = connection.invocations.get(invocationId);
      connection.invocations.delete(invocationId);
      // A finished invocation's signal is aborted, for code that kept it (made now only if it was read).
      cancellation?.abort();
    }
    streamIds?.forEach((id, i) => {
      if (connection.uploads.get(id) === uploads[i]) connection.uploads.delete(id);
    });
  }

  private completeWithError(connection: HubConnection, invocationId: string, error: string): void {
    if (connection.isConnected) connection.write(completion(invocationId, { error }));
  }

  /** The .NET error text: the generic sentence, plus the error's type and message when allowed. */
  private errorText(sentence: string, err: unknown): string {
    if (typeof err === "string") return this.options.enableDetailedErrors ? `${sentence} ${err}` : sentence;
    if (err instanceof HubError) return `${sentence} HubException: ${err.message}`;
    if (this.options.enableDetailedErrors && err instanceof Error)
      return `${sentence} ${err.name}: ${err.message}`;
    return sentence;
  }
}

const aborted = Symbol("aborted");

/**
 * The iterator's next step, or `aborted` as soon as the signal aborts (the pending next() is then left to
 * settle on its own). The abort listener lives for one step only, so a long stream accumulates nothing.
 */
function nextOrAbort<T>(
  iterator: AsyncIterator<T>,
  signal: AbortSignal,
): Promise<IteratorResult<T> | typeof aborted> {
  if (signal.aborted) return Promise.resolve(aborted);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => resolve(aborted);
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (step) => {
        signal.removeEventListener("abort", onAbort);
        resolve(step);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function completion(invocationId: string, outcome: { result?: unknown; error?: string }): CompletionMessage {
  if (outcome.error !== undefined)
    return { type: MessageType.Completion, invocationId, error: outcome.error, hasResult: false };
  if ("result" in outcome)
    return { type: MessageType.Completion, invocationId, result: outcome.result, hasResult: true };
  return { type: MessageType.Completion, invocationId, hasResult: false };
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === "object" && Symbol.asyncIterator in value;
}
