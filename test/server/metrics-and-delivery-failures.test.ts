// Prometheus metrics, and a delivery that fails on a node: logged there with the identifier, the connection
// and the reason, and counted.
import { afterEach, describe, expect, it } from "vitest";
import type { Logger } from "../../src/index.js";
import { connectClient } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { TestHub } from "../hubs/test-hub.js";

type Entry = { level: string; obj: Record<string, unknown> };
function recordingLogger(): Logger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: string) => (obj: object) =>
    void entries.push({ level, obj: obj as Record<string, unknown> });
  return { entries, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const servers: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("metrics", () => {
  it("are served at /metrics when asked for, and count connections and invocations", async () => {
    const server = await startServer({ hubs: { "/testhub": TestHub }, metrics: true });
    servers.push(server);
    const client = await connectClient(server.url("/testhub"));
    await client.connection.invoke("Echo", "x");
    await expect(client.connection.invoke("ThrowException", "boom")).rejects.toThrow();
    const text = await (await fetch(server.url("/metrics"))).text();
    expect(text).toMatch(/switchboard_connections\{hub="\/testhub",node="[^"]+"\} 1/);
    expect(text).toMatch(/switchboard_invocations_total\{hub="\/testhub",outcome="ok",node="[^"]+"\} 1/);
    expect(text).toMatch(/switchboard_invocations_total\{hub="\/testhub",outcome="error",node="[^"]+"\} 1/);
    expect(text).toMatch(/switchboard_process_resident_memory_bytes/);
    await client.stop();
  });

  it("are not served unless asked for", async () => {
    const server = await startServer({ hubs: { "/testhub": TestHub } });
    servers.push(server);
    expect((await fetch(server.url("/metrics"))).status).toBe(404);
  });
});

describe("a notification that cannot be delivered", () => {
  it("is logged with the identifier, the connection and the reason, and counted, when the client stops reading", async () => {
    const logger = recordingLogger();
    const server = await startServer({
      hubs: {},
      notifications: { allowAnonymousRegistration: true },
      metrics: true,
      logger,
    });
    servers.push(server);
    const raw = await openRaw(server.baseUrl, "/hubs/notifications");
    raw.send('{"type":1,"invocationId":"1","target":"register","arguments":["slow-reader"]}\u001e');
    const registered = records(await raw.nextFrame((f) => records(f).some((r) => r.type === 3)));
    const connectionId = (registered.find((r) => r.type === 3)!.result as { connectionId: string })
      .connectionId;
    // The client stops reading: the kernel's buffers fill, then the connection's own 1 MiB buffer.
    (raw.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const text = "x".repeat(60_000);
    for (let i = 0; i < 2000 && !logger.entries.some((e) => e.obj.event === "DeliveryFailed"); i++) {
      await server.server.notifications!.notify("slow-reader", { message: text }).catch(() => undefined);
      if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const failure = logger.entries.find((e) => e.obj.event === "DeliveryFailed");
    expect(failure?.level).toBe("warn");
    expect(failure?.obj).toMatchObject({
      hub: "/hubs/notifications",
      connectionId,
      identifiers: ["slow-reader"],
      method: "addMessage",
      reason: "the client's outgoing buffer is full",
    });
    const metrics = await (await fetch(server.url("/metrics"))).text();
    expect(metrics).toMatch(
      /switchboard_delivery_failures_total\{hub="\/hubs\/notifications",reason="slow_client",node="[^"]+"\} [1-9]/,
    );
    raw.socket.terminate();
  });
});
