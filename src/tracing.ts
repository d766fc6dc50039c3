/**
 * OpenTelemetry tracing, through `@opentelemetry/api` only: the application chooses and registers an SDK
 * (docs/tracing.md); without one every span here is a no-op. The spans are negotiate, HTTP API requests,
 * hub invocations, sends, the PostgreSQL backplane's append and the receiving node's delivery. A send's trace
 * context travels with the message (in the PostgreSQL log row or the Redis inbox entry), so one trace runs
 * from the HTTP API or the hub method through the backplane to the node that writes to the client.
 *
 * Between nodes and in SignalR message headers the context is a W3C `traceparent` string, whatever
 * propagator the application configured for HTTP: it is the format the .NET client sends.
 */
import {
  context,
  isSpanContextValid,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
} from "@opentelemetry/api";
import { SWITCHBOARD_VERSION } from "./version.js";

export { SpanKind };

export const tracer = trace.getTracer("switchboard", SWITCHBOARD_VERSION);

/** Attribute names of Switchboard's own. */
export const TraceAttributes = {
  node: "switchboard.node_id",
  hub: "switchboard.hub",
  target: "switchboard.target_kind",
  connection: "switchboard.connection_id",
  batch: "switchboard.batch_size",
  recipients: "switchboard.recipients",
} as const;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The W3C traceparent of a context's span, or undefined when it has none (no SDK, or no trace). */
export function traceparentOf(ctx: Context): string | undefined {
  const spanContext = trace.getSpanContext(ctx);
  if (spanContext === undefined || !isSpanContextValid(spanContext)) return undefined;
  const flags = (spanContext.traceFlags & TraceFlags.SAMPLED).toString(16).padStart(2, "0");
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The span context a traceparent names, or undefined when it is absent or malformed. */
export function spanContextOf(traceparent: unknown): SpanContext | undefined {
  if (typeof traceparent !== "string") return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (match === null) return undefined;
  const spanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: parseInt(match[3]!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** A context whose parent is the traceparent's span, or the active context when there is none. */
export function contextOf(traceparent: unknown): Context {
  const spanContext = spanContextOf(traceparent);
  return spanContext === undefined ? context.active() : trace.setSpanContext(context.active(), spanContext);
}

/** The context an incoming HTTP request carries, read by the propagator the application configured. */
export function contextOfRequest(headers: Record<string, string | string[] | undefined>): Context {
  return propagation.extract(context.active(), headers);
}

/** Whether the current context has a span: sends start a span of their own only then (cheap otherwise). */
export function activeTraceparent(): string | undefined {
  return traceparentOf(context.active());
}

/**
 * Runs `work` in a new span, child of `parent`, as the active context; ends the span when `work` settles
 * and marks it failed when it throws.
 */
export async function inSpan<T>(
  name: string,
  options: { kind: SpanKind; attributes?: Attributes | (() => Attributes); links?: Link[] },
  parent: Context,
  work: (span: Span) => Promise<T> | T,
): Promise<T> {
  const { attributes, ...rest } = options;
  const span = tracer.startSpan(name, typeof attributes === "function" ? rest : options, parent);
  // Attributes given as a function are made only for a span that records: a hot path pays nothing for them.
  if (typeof attributes === "function" && span.isRecording()) span.setAttributes(attributes());
  try {
    // Run in the span's context even when it records nothing: an unsampled span still carries the
    // sampling decision to what runs inside it (without an SDK, `with` just calls the work).
    return await context.with(trace.setSpan(parent, span), () => work(span));
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error. */
export function failed(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** {@link inSpan} for synchronous work (a delivery: the writes are queued before it returns). */
export function inSpanSync<T>(
  name: string,
  options: { kind: SpanKind; attributes?: Attributes },
  parent: Context,
  work: () => T,
): T {
  const span = tracer.startSpan(name, options, parent);
  try {
    return context.with(trace.setSpan(parent, span), work);
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** The attributes of a send's span: the sending node, the hub, the target's kind. */
export function sendAttributes(nodeId: string, target: { hub: string; kind: string }): Attributes {
  return {
    [TraceAttributes.node]: nodeId,
    [TraceAttributes.hub]: target.hub,
    [TraceAttributes.target]: target.kind,
  };
}

/**
 * A send made inside a trace (call it only when {@link activeTraceparent} is set): `send` runs in a
 * `switchboard send` producer span and gets that span's traceparent, for the message to carry to the nodes
 * that deliver it. Every backplane's sends are traced this way.
 */
export function sendInSpan<R extends { connections: number }>(
  attributes: Attributes,
  send: (traceparent: string | undefined) => Promise<R>,
): Promise<R> {
  const options = { kind: SpanKind.PRODUCER, attributes };
  return inSpan("switchboard send", options, context.active(), async (span) => {
    const result = await send(activeTraceparent());
    span.setAttribute(TraceAttributes.recipients, result.connections);
    return result;
  });
}

/** A node's delivery of a traced send, in a `switchboard deliver` consumer span that is the send's child. */
export function deliverInSpan(attributes: Attributes, traceparent: string, deliver: () => void): void {
  inSpanSync("switchboard deliver", { kind: SpanKind.CONSUMER, attributes }, contextOf(traceparent), deliver);
}

/** Marks the active span failed: a hub method's error, caught where the client is answered. */
export function markActiveSpanFailed(err: unknown): void {
  const span = trace.getSpan(context.active());
  if (span?.isRecording()) failed(span, err);
}
