// OpenTelemetry tracing across two nodes on one PostgreSQL, collected in-process by an in-memory exporter:
// an HTTP API send on node A with a `traceparent` header, and a hub method called with the .NET client's
// `traceparent` message header, each make one trace from the request through the append on A to the
// delivery on B, where the official client receives the message. Then the same trace through Redis.
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgres } from "../../src/backplane/postgres/index.js";
import { redis } from "../../src/backplane/redis/index.js";
import { runTracingExample } from "../../examples/tracing.js";
import { ClusterHub, userIdProvider } from "../hubs/cluster-hubs.js";
import { createTestSchema, type TestSchema } from "../support/database.js";
import { connectClient, eventually, type TestClient } from "../support/hub-client.js";
import { openRaw } from "../support/raw-client.js";
import { findRedisServer } from "../support/redis-program.js";
import { startRedisServers, type RedisServers } from "../support/redis-servers.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const redisServer = await findRedisServer();
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let schema: TestSchema;
let a: RunningServer;
let b: RunningServer;
const clients: TestClient[] = [];

beforeAll(async () => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  schema = await createTestSchema("sb_tracing");
  const node = () =>
    startServer({
      hubs: { "/hub": ClusterHub },
      userIdProvider,
      api: { allowWithoutKey: true },
      backplane: postgres({ connectionString: schema.url, schema: schema.schema }),
    });
  a = await node();
  b = await node();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await a?.close();
  await b?.close();
  await schema?.drop();
  trace.disable();
  context.disable();
  propagation.disable();
});

const spansOf = (traceId: string) =>
  exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const node = (span: { attributes: Record<string, unknown> }) => span.attributes["switchboard.node_id"];

/**
 * Sends to `user` (connected to node `to`) through node `from`'s HTTP API with a traceparent; resolves once
 * the message and the delivery's span have arrived, with a finder for the trace's spans by name.
 */
async function tracedApiSend(from: RunningServer, to: RunningServer, user: string) {
  const client = await connectClient(to.url(`/hub?user=${user}`), ["msg"]);
  clients.push(client);
  const traceId = randomBytes(16).toString("hex");
  const response = await fetch(from.url(`/api/users/${user}/messages`), {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`,
    },
    body: JSON.stringify({ hub: "/hub", method: "msg", arguments: ["traced"] }),
  });
  expect(response.status).toBe(202);
  await eventually(() => client.received("msg").length > 0, 10_000, "the message");
  await eventually(() => spansOf(traceId).some((s) => s.name === "switchboard deliver"), 10_000, "the spans");
  const spans = spansOf(traceId);
  return (name: string) => spans.find((s) => s.name === name)!;
}

describe("tracing across nodes", () => {
  it("an API send: one trace from the request on node A through the append to the delivery on node B", async () => {
    const byName = await tracedApiSend(a, b, "tina");
    const request = byName("POST /api/users/{userId}/messages");
    const send = byName("switchboard send");
    const append = byName("switchboard append");
    const deliver = byName("switchboard deliver");
    expect([request, send, append, deliver].every(Boolean)).toBe(true);
    expect(send.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(append.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(deliver.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect([node(send), node(append)]).toEqual([a.server.nodeId, a.server.nodeId]);
    expect(node(deliver)).toBe(b.server.nodeId);
    expect(deliver.attributes["switchboard.recipients"]).toBe(1);
  });

  it("a hub method called with the .NET client's traceparent header continues that trace to node B", async () => {
    const uma = await connectClient(b.url("/hub?user=uma"), ["msg"]);
    clients.push(uma);
    const traceId = randomBytes(16).toString("hex");
    const caller = await openRaw(a.baseUrl, "/hub");
    const invocation = {
      type: 1,
      invocationId: "1",
      target: "toUser",
      arguments: ["uma", "from a traced call"],
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` },
    };
    caller.send(`${JSON.stringify(invocation)}\u001e`);
    await eventually(() => uma.received("msg").length > 0, 10_000, "the message");
    caller.close();
    await eventually(
      () => spansOf(traceId).some((s) => s.name === "switchboard deliver"),
      10_000,
      "the spans",
    );

    const spans = spansOf(traceId);
    const method = spans.find((s) => s.name === "/hub/toUser")!;
    const deliver = spans.find((s) => s.name === "switchboard deliver")!;
    expect(method.attributes["rpc.method"]).toBe("toUser");
    expect(spans.find((s) => s.name === "switchboard send")?.parentSpanContext?.spanId).toBe(
      method.spanContext().spanId,
    );
    expect(node(deliver)).toBe(b.server.nodeId);
  });

  it("a request without a traceparent starts its own trace, and the delivery on node B joins it", async () => {
    const vic = await connectClient(b.url("/hub?user=vic"), ["msg"]);
    clients.push(vic);
    exporter.reset();
    const response = await fetch(a.url("/api/users/vic/messages"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ hub: "/hub", method: "msg", arguments: ["untraced"] }),
    });
    expect(response.status).toBe(202);
    await eventually(() => vic.received("msg").length > 0, 10_000, "the message");
    await eventually(
      () => exporter.getFinishedSpans().some((s) => s.name === "switchboard deliver"),
      10_000,
      "the delivery's span",
    );
    const request = exporter.getFinishedSpans().find((s) => s.name === "POST /api/users/{userId}/messages")!;
    expect(request.parentSpanContext).toBeUndefined();
    const names = spansOf(request.spanContext().traceId).map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(["switchboard send", "switchboard append", "switchboard deliver"]),
    );
  });

  it("examples/tracing.ts runs as documented: one trace from node A's API to node B's delivery", async () => {
    exporter.reset();
    const example = await createTestSchema("sb_tracing_example");
    try {
      expect(await runTracingExample(example.url, example.schema)).toBe("traced through PostgreSQL");
    } finally {
      await example.drop();
    }
    const deliver = exporter.getFinishedSpans().find((s) => s.name === "switchboard deliver")!;
    const names = spansOf(deliver.spanContext().traceId).map((s) => s.name);
    expect(names).toEqual(
      expect.arrayContaining(["POST /api/users/{userId}/messages", "switchboard send", "switchboard append"]),
    );
  });
});

describe.skipIf(!redisServer.path)("tracing across nodes on Redis", () => {
  let servers: RedisServers;
  let ra: RunningServer;
  let rb: RunningServer;

  beforeAll(async () => {
    servers = await startRedisServers({ binary: redisServer.path });
    const node = () =>
      startServer({
        hubs: { "/hub": ClusterHub },
        userIdProvider,
        api: { allowWithoutKey: true },
        backplane: redis({ url: servers.url, prefix: "sb-tracing" }),
      });
    ra = await node();
    rb = await node();
  });

  afterAll(async () => {
    await ra?.close();
    await rb?.close();
    await servers?.stop();
  });

  it("an API send: one trace from the request on node A through Redis to the delivery on node B", async () => {
    const byName = await tracedApiSend(ra, rb, "wes");
    const request = byName("POST /api/users/{userId}/messages");
    const send = byName("switchboard send");
    const deliver = byName("switchboard deliver");
    expect([request, send, deliver].every(Boolean)).toBe(true);
    expect(send.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(deliver.parentSpanContext?.spanId).toBe(send.spanContext().spanId);
    expect(node(send)).toBe(ra.server.nodeId);
    expect(send.attributes["switchboard.recipients"]).toBe(1);
    expect(node(deliver)).toBe(rb.server.nodeId);
    expect(deliver.attributes["switchboard.recipients"]).toBe(1);
  });
});
