// Traces through the backplane, printed to the console: `npx tsx examples/tracing.ts` (PostgreSQL from
// $DATABASE_URL, else an embedded one in a temporary folder). Two nodes share the database; a client is
// connected to node B; an HTTP API send on node A reaches it. Printed, all under one trace id:
// "POST /api/users/{userId}/messages" and "switchboard send" and "switchboard append" on node A, then
// "switchboard deliver" on node B.
//
// Switchboard only uses @opentelemetry/api: the application picks the SDK and the exporter (here the
// console; in production OTLP to a collector) and registers them before it creates its servers.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import { HubConnectionBuilder } from "@microsoft/signalr";
import { createServer, Hub } from "../src/index.js";
import { postgres } from "../src/backplane/postgres/index.js";
import { startEmbeddedPostgres } from "../src/backplane/postgres/embedded.js";

/** The SDK set-up an application does once, first: a provider, the async context, W3C headers. */
export function registerTracing(exporter: SpanExporter = new ConsoleSpanExporter()): void {
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  );
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

class EmptyHub extends Hub {}

/** Two nodes, a client on B, a traced API send on A; resolves with what the client received. */
export async function runTracingExample(databaseUrl: string, schema = "switchboard_tracing_example") {
  const node = () =>
    createServer({
      hubs: { "/hubs/example": EmptyHub },
      userIdProvider: (req) =>
        new URL(req.url ?? "/", "http://localhost").searchParams.get("user") ?? undefined,
      api: { allowWithoutKey: true }, // an example: use apiKeyHashes in production
      backplane: postgres({ connectionString: databaseUrl, schema }),
    });
  const a = node();
  const b = node();
  const urlOf = async (server: ReturnType<typeof node>) =>
    `http://127.0.0.1:${(await server.listen(0)).port}`;
  const [urlA, urlB] = [await urlOf(a), await urlOf(b)];
  const client = new HubConnectionBuilder().withUrl(`${urlB}/hubs/example?user=ada`).build();
  const received = new Promise<string>((resolve) => client.on("hello", resolve));
  await client.start();
  try {
    // Any traceparent header continues the caller's trace; without one the request starts a trace.
    const response = await fetch(`${urlA}/api/users/ada/messages`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        hub: "/hubs/example",
        method: "hello",
        arguments: ["traced through PostgreSQL"],
      }),
    });
    if (response.status !== 202)
      throw new Error(`The send failed: ${response.status} ${await response.text()}`);
    return await received;
  } finally {
    await client.stop();
    await a.close();
    await b.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  registerTracing();
  let databaseUrl = process.env.DATABASE_URL;
  let stopDatabase = async () => {};
  if (databaseUrl === undefined) {
    const dataDir = await mkdtemp(join(tmpdir(), "switchboard-tracing-example-"));
    const embedded = await startEmbeddedPostgres({ dataDir, unsafeFast: true });
    databaseUrl = embedded.url;
    stopDatabase = async () => {
      await embedded.stop();
      await rm(dataDir, { recursive: true, force: true });
    };
  }
  try {
    console.log(`The client received: ${await runTracingExample(databaseUrl)}`);
  } finally {
    await stopDatabase();
  }
}
