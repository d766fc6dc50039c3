import { MessageType } from "../protocol/messages.js";
import type { HubProtocol } from "../protocol/hub-protocol.js";
import { clockNow, type HubConnection } from "./hub-connection.js";
import { hubLog } from "./hub.log.js";
import { type Logger } from "../log.js";
import type { HubOptions } from "./hub-options.js";

/** The close error a client sees when its credential expired. */
export const AUTHENTICATION_EXPIRED =
  "Connection closed with an error. The connection's authentication expired.";

/**
 * The timers of every connection of one hub, on one interval: handshake timeouts, keep-alive pings, client
 * timeouts, credential expiry, stateful reconnect's Acks and resume windows.
 */
export class KeepAlive {
  private readonly timer: NodeJS.Timeout;
  private readonly pingBytes = new Map<string, Buffer>();

  constructor(
    private readonly connections: () => Iterable<HubConnection>,
    protocols: readonly HubProtocol[],
    private readonly options: HubOptions,
    private readonly log: Logger,
  ) {
    for (const p of protocols) this.pingBytes.set(p.name, p.write({ type: MessageType.Ping }));
    const { keepAliveIntervalMs, clientTimeoutMs, handshakeTimeoutMs, statefulReconnectWindowMs } = options;
    const tick = Math.max(
      10,
      Math.min(
        1000,
        keepAliveIntervalMs / 2,
        clientTimeoutMs / 4,
        handshakeTimeoutMs / 2,
        statefulReconnectWindowMs / 4,
      ),
    );
    this.timer = setInterval(() => this.tick(), tick).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    const now = clockNow();
    const wallClock = Date.now(); // credentials expire by the calendar, not by the monotonic clock
    const {
      keepAliveIntervalMs,
      clientTimeoutMs,
      handshakeTimeoutMs,
      statefulReconnectWindowMs,
      closeOnAuthenticationExpiration,
    } = this.options;
    for (const connection of this.connections()) {
      if (connection.isHandshaking) {
        if (now - connection.openedAt >= handshakeTimeoutMs) connection.handshakeTimedOut();
        continue;
      }
      if (connection.isDetached) {
        if (now - connection.detachedAt >= statefulReconnectWindowMs) connection.resumeWindowExpired();
        continue;
      }
      if (!connection.isConnected) continue;
      const authExpiresAt = connection.request.authExpiresAtMs;
      if (authExpiresAt !== undefined && closeOnAuthenticationExpiration && wallClock >= authExpiresAt) {
        hubLog.authenticationExpired(this.log, connection.ids);
        // Reconnecting is allowed: the client's next negotiate asks its token factory for a fresh token.
        connection.close(AUTHENTICATION_EXPIRED, true);
        continue;
      }
      connection.sendAckIfDue();
      if (connection.inherentKeepAlive) continue;
      if (connection.pingReceived && now - connection.lastReceivedAt >= clientTimeoutMs) {
        hubLog.clientTimedOut(this.log, connection.ids, clientTimeoutMs);
        const reason = `Nothing was received from the client for ${clientTimeoutMs} ms.`;
        // A stateful connection only loses its transport: its client may still come back.
        if (connection.isResumable) connection.dropTransport(new Error(reason));
        else connection.close(`Connection closed with an error. ${reason}`, true);
        continue;
      }
      if (now - connection.lastSentAt >= keepAliveIntervalMs) {
        connection.sendPing(this.pingBytes.get(connection.protocol.name)!);
      }
    }
  }
}
