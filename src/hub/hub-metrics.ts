/**
 * What the hub layer counts. The server plugs in Prometheus counters (src/server/metrics.ts); the hub layer
 * itself depends on no metrics library.
 */
export interface HubMetrics {
  connectionOpened(hub: string): void;
  connectionClosed(hub: string): void;
  /** Hub messages received from a client. */
  messagesReceived(hub: string, count: number): void;
  /** An invocation finished; `outcome` is "ok" or "error". */
  invocationCompleted(hub: string, outcome: "ok" | "error"): void;
  /** A message for a connection of this node that could not be written to it. */
  deliveryFailed(hub: string, reason: "slow_client" | "unserializable"): void;
}

export const noMetrics: HubMetrics = {
  connectionOpened() {},
  connectionClosed() {},
  messagesReceived() {},
  invocationCompleted() {},
  deliveryFailed() {},
};
