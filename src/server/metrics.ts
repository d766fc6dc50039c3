import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Backplane } from "../backplane/backplane.js";
import type { HubMetrics } from "../hub/hub-metrics.js";

/**
 * Prometheus metrics of one node, served at `GET /metrics`: connections, messages received, invocations,
 * failed deliveries, the backplane's own counters when it has any (PostgreSQL's and Redis's do), and Node's
 * process metrics. One registry per server, so several servers in one process do not collide.
 */
export function createMetrics(backplane: Backplane) {
  const registry = new Registry();
  registry.setDefaultLabels({ node: backplane.nodeId });
  collectDefaultMetrics({ register: registry, prefix: "switchboard_" });
  const connections = new Gauge({
    name: "switchboard_connections",
    help: "Open hub connections on this node.",
    labelNames: ["hub"],
    registers: [registry],
  });
  const received = new Counter({
    name: "switchboard_messages_received_total",
    help: "Hub messages received from clients.",
    labelNames: ["hub"],
    registers: [registry],
  });
  const invocations = new Counter({
    name: "switchboard_invocations_total",
    help: "Hub method invocations finished, by outcome.",
    labelNames: ["hub", "outcome"],
    registers: [registry],
  });
  const deliveryFailures = new Counter({
    name: "switchboard_delivery_failures_total",
    help: "Messages for connections of this node that could not be written to them, by reason.",
    labelNames: ["hub", "reason"],
    registers: [registry],
  });
  const stats = (backplane as { stats?: () => Record<string, number> }).stats?.bind(backplane);
  if (stats) {
    new Gauge({
      name: "switchboard_backplane",
      help: "The backplane's counters (statements, batches, messages written and read, wake-ups, cursor…).",
      labelNames: ["counter"],
      registers: [registry],
      collect() {
        for (const [counter, value] of Object.entries(stats())) this.set({ counter }, value);
      },
    });
  }

  const hubMetrics: HubMetrics = {
    connectionOpened: (hub) => connections.inc({ hub }),
    connectionClosed: (hub) => connections.dec({ hub }),
    messagesReceived: (hub, count) => received.inc({ hub }, count),
    invocationCompleted: (hub, outcome) => invocations.inc({ hub, outcome }),
    deliveryFailed: (hub, reason) => deliveryFailures.inc({ hub, reason }),
  };

  /** Answers `GET /metrics`; returns false for other requests. */
  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.url !== "/metrics" || req.method !== "GET") return false;
    registry.metrics().then(
      (body) => res.writeHead(200, { "Content-Type": registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500, { "Content-Type": "text/plain" }).end(String(err)),
    );
    return true;
  }

  return { hubMetrics, handle, registry };
}
