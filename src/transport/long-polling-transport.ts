import type { ServerResponse } from "node:http";
import { BaseConnection, type ConnectionInit } from "./base-connection.js";
import { transportLog } from "./transport.log.js";

/** Sent on every poll response so no cache or proxy answers a poll for us. */
export const NO_CACHE_HEADERS: Readonly<Record<string, string>> = {
  "Cache-Control": "no-cache, no-store",
  Pragma: "no-cache",
  Expires: "Thu, 01 Jan 1970 00:00:00 GMT",
};

/** The long polling timers. */
export interface LongPollingTimeouts {
  /** How long a poll is held open without data before it returns 200 empty (below the client's 100 s). */
  pollTimeoutMs: number;
  /** How long the connection lives with no poll pending before it is closed as gone. */
  disconnectTimeoutMs: number;
}

interface PendingPoll {
  response: ServerResponse;
  timer: NodeJS.Timeout;
}

function answer(response: ServerResponse, status: number, contentType?: string, body?: Buffer): void {
  if (response.destroyed || response.headersSent) return;
  const headers: Record<string, string | number> = { ...NO_CACHE_HEADERS };
  if (contentType !== undefined) {
    headers["Content-Type"] = contentType;
    headers["Content-Length"] = body?.length ?? 0;
  }
  response.writeHead(status, headers);
  response.end(body);
}

/**
 * A connection over long polling. The client's polls (GET) carry the server's bytes back, its POSTs
 * carry its own. Outgoing bytes wait in a buffer until a poll takes them all in one body.
 *
 * - The first poll returns 200 empty at once (the endpoint answers it with {@link answerFirstPoll}).
 * - A later poll returns everything buffered (200, application/octet-stream), or waits for data up to
 *   the poll timeout (then 200, empty, text/plain). A new poll supersedes a pending one (the old one gets 204).
 * - After the connection ends, polls drain what is left, then get 204 ("poll terminated by server").
 * - No poll within the disconnect timeout: the client is gone, and the connection ends **with an error**.
 * - The client's DELETE ({@link stopByClient}) ends it normally.
 */
export class LongPollingConnection extends BaseConnection {
  // Getters, not fields: the same for every connection, so kept once on the prototype.
  get transport(): "LongPolling" {
    return "LongPolling";
  }
  get supportsBinary(): boolean {
    return true;
  }
  get inherentKeepAlive(): boolean {
    return true;
  }
  private readonly timeouts: LongPollingTimeouts;
  private buffer: Buffer[] = [];
  private bufferedBytes = 0;
  private pending: PendingPoll | undefined;
  private disconnectTimer: NodeJS.Timeout | undefined;
  private flushScheduled = false;

  constructor(init: ConnectionInit, timeouts: LongPollingTimeouts) {
    super(init);
    this.timeouts = timeouts;
  }

  /** Answers the poll that started the connection: 200, empty. */
  answerFirstPoll(response: ServerResponse): void {
    answer(response, 200, "application/octet-stream");
    this.armDisconnectTimer();
  }

  /** Serves a poll after the first one, including polls after the connection ended (drain, then 204). */
  poll(response: ServerResponse): void {
    this.clearDisconnectTimer();
    const previous = this.takePending();
    if (previous) answer(previous.response, 204);
    if (this.bufferedBytes > 0) {
      this.answerWithData(response);
      return;
    }
    if (!this.isOpen) {
      answer(response, 204);
      return;
    }
    const timer = setTimeout(() => {
      if (this.pending?.response !== response) return;
      this.pending = undefined;
      answer(response, 200, "text/plain");
      this.armDisconnectTimer();
    }, this.timeouts.pollTimeoutMs);
    this.pending = { response, timer };
    response.on("close", () => {
      // The client gave up on this poll (its own timeout, or stop()): wait for the next one.
      if (this.pending?.response !== response) return;
      this.takePending();
      this.armDisconnectTimer();
    });
  }

  /** The client's DELETE: a normal end; a pending poll gets 204. */
  stopByClient(): void {
    const previous = this.takePending();
    if (previous) answer(previous.response, 204);
    this.clearDisconnectTimer();
    this.dropBuffer();
    this.ended();
  }

  send(data: Buffer): boolean {
    if (!this.isOpen || !this.hasRoom(this.bufferedBytes)) return false;
    if (data.length === 0) return true;
    this.buffer.push(data);
    this.bufferedBytes += data.length;
    if (this.pending && !this.flushScheduled) {
      // Wait a turn so a burst of sends leaves in one response.
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        if (this.pending && this.bufferedBytes > 0) this.answerWithData(this.takePending()!.response);
      });
    }
    return true;
  }

  protected closeTransport(): void {
    // What is buffered (a hub Close message, say) still goes out; the poll after it gets 204.
    const previous = this.takePending();
    if (!previous) return;
    if (this.bufferedBytes > 0) {
      this.answerWithData(previous.response);
    } else {
      answer(previous.response, 204);
    }
  }

  private answerWithData(response: ServerResponse): void {
    if (response.destroyed) {
      this.armDisconnectTimer();
      return;
    }
    const body = this.buffer.length === 1 ? this.buffer[0]! : Buffer.concat(this.buffer);
    this.buffer = [];
    this.bufferedBytes = 0;
    answer(response, 200, "application/octet-stream", body);
    this.armDisconnectTimer();
  }

  private takePending(): PendingPoll | undefined {
    const pending = this.pending;
    if (pending) clearTimeout(pending.timer);
    this.pending = undefined;
    return pending;
  }

  private armDisconnectTimer(): void {
    this.clearDisconnectTimer();
    this.disconnectTimer = setTimeout(() => {
      this.disconnectTimer = undefined;
      this.dropBuffer();
      if (!this.isOpen) return;
      transportLog.pollTimedOut(this.logger, this.connectionId, this.timeouts.disconnectTimeoutMs);
      this.ended(
        new Error(`The long polling client did not poll within ${this.timeouts.disconnectTimeoutMs} ms.`),
      );
    }, this.timeouts.disconnectTimeoutMs);
    this.disconnectTimer.unref();
  }

  private clearDisconnectTimer(): void {
    if (this.disconnectTimer) clearTimeout(this.disconnectTimer);
    this.disconnectTimer = undefined;
  }

  private dropBuffer(): void {
    this.buffer = [];
    this.bufferedBytes = 0;
  }
}
