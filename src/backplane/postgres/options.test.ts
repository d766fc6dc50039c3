import { describe, expect, it } from "vitest";
import { postgres } from "./postgres-backplane.js";
import { createPublisher } from "./publisher.js";
import type { PostgresBackplaneOptions } from "./options.js";

const url = "postgres://postgres@127.0.0.1:5432/test";

describe("postgres() options", () => {
  const bad: [string, Partial<PostgresBackplaneOptions> & Record<string, unknown>][] = [
    ["connectionString", { connectionString: "" }],
    ["connectionString", { connectionString: 42 as unknown as string }],
    ["schema", { schema: "" }],
    ["schema", { schema: "x".repeat(64) }],
    ["heartbeatIntervalMs", { heartbeatIntervalMs: 0 }],
    ["heartbeatIntervalMs", { heartbeatIntervalMs: 1.5 }],
    ["nodeTimeoutMs", { nodeTimeoutMs: -1 }],
    ["nodeTimeoutMs", { heartbeatIntervalMs: 2000, nodeTimeoutMs: 3000 }],
    ["pollIntervalMs", { pollIntervalMs: 0 }],
    ["pollIntervalMs", { pollIntervalMs: "250" as unknown as number }],
    ["readBatchSize", { readBatchSize: 0 }],
    ["maxBatchMessages", { maxBatchMessages: 0 }],
    ["maxBatchBytes", { maxBatchBytes: 10 }],
    ["maxQueuedMessages", { maxQueuedMessages: Number.NaN }],
    ["publishTimeoutMs", { publishTimeoutMs: Infinity }],
    ["poolSize", { poolSize: 0 }],
    ["retention.maxAgeMs", { retention: { maxAgeMs: 0 } }],
    ["retention.maxRows", { retention: { maxRows: -5 } }],
    ["retention.intervalMs", { retention: { intervalMs: 0 } }],
    ["retention.batchSize", { retention: { batchSize: 0 } }],
    ["migrate", { migrate: "yes" as unknown as boolean }],
    ["logger.warn", { logger: { debug() {}, info() {}, error() {} } as never }],
  ];

  for (const [name, options] of bad) {
    it(`rejects a bad ${name} with an error naming it (${JSON.stringify(options)})`, () => {
      expect(() => postgres({ connectionString: url, ...options })).toThrow(name);
    });
  }

  it("accepts the defaults and connects nothing until start", async () => {
    const backplane = postgres({ connectionString: url });
    expect(backplane.schema).toBe("switchboard");
    expect(backplane.nodeId).toMatch(/^[0-9a-f-]{36}$/);
    await backplane.close();
  });

  it("createPublisher validates its options the same way", () => {
    expect(() => createPublisher({ connectionString: "" })).toThrow("connectionString");
    expect(() => createPublisher({ connectionString: url, maxBatchMessages: -1 })).toThrow(
      "maxBatchMessages",
    );
  });
});
