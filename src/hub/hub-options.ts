/** Hub behaviour settings; every field has the ASP.NET Core default unless noted. */
export interface HubOptions {
  /** Send a Ping after this long without sending anything (not on long polling). Default 15 000 ms. */
  keepAliveIntervalMs: number;
  /** Close a client that sent nothing for this long, counted from its first Ping. Default 30 000 ms. */
  clientTimeoutMs: number;
  /** Close a connection whose handshake has not arrived by then. Default 15 000 ms. */
  handshakeTimeoutMs: number;
  /** The largest message a client may send, in bytes; a larger one closes its connection. Default 32 768. */
  maximumReceiveMessageSize: number;
  /** Invocations of one client that run at the same time; later ones wait (streams do not count). Default 1. */
  maximumParallelInvocationsPerClient: number;
  /** Include the error's type and message in the error texts clients receive. Default false. */
  enableDetailedErrors: boolean;
  /** Upload-stream items a client may send ahead of the hub method reading them. Default 1 000 (ours). */
  streamBufferCapacity: number;
  /**
   * Stateful reconnect: the unacknowledged bytes that may be in flight to one client. Messages beyond wait
   * on the server (and the client's next calls wait too) until the client acknowledges. Default 100 000
   * (as ASP.NET Core's StatefulReconnectBufferSize).
   */
  statefulReconnectBufferSize: number;
  /**
   * Stateful reconnect: how long a connection whose transport was lost waits for its client to come back
   * (on this node or another) before it ends and onDisconnected runs. Default 30 000 ms (ours; ASP.NET
   * Core keeps 15 s).
   */
  statefulReconnectWindowMs: number;
  /**
   * Stateful reconnect: the most a connection keeps for its client, sent or waiting, before it is closed
   * as a client that does not keep up (or is gone). Default 1 MiB.
   */
  statefulReconnectMaxBufferedBytes: number;
  /**
   * Client results: how long `clients.client(id).invoke(...)` waits for the client's answer before it
   * rejects. Default 30 000 ms (ours: ASP.NET Core waits without end unless given a cancellation token).
   */
  clientResultTimeoutMs: number;
  /**
   * Close a connection when its credential expires (the `expiresAt` its `authenticate` hook returned, a
   * token's `exp` with `jwtAuthentication`), with an error the client sees; a client with automatic
   * reconnect comes back with a fresh token. Checked every second. Default true (ASP.NET Core: false).
   */
  closeOnAuthenticationExpiration: boolean;
}

export const defaultHubOptions: HubOptions = {
  keepAliveIntervalMs: 15_000,
  clientTimeoutMs: 30_000,
  handshakeTimeoutMs: 15_000,
  maximumReceiveMessageSize: 32 * 1024,
  maximumParallelInvocationsPerClient: 1,
  enableDetailedErrors: false,
  streamBufferCapacity: 1_000,
  statefulReconnectBufferSize: 100_000,
  statefulReconnectWindowMs: 30_000,
  statefulReconnectMaxBufferedBytes: 1024 * 1024,
  clientResultTimeoutMs: 30_000,
  closeOnAuthenticationExpiration: true,
};
