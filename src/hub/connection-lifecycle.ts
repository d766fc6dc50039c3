import type { HubConnection, TransportEnd } from "./hub-connection.js";

/** What the lifecycle asks of the hub endpoint: the registry, the hub's two hooks, and bookkeeping. */
export interface LifecycleHost {
  /** Records the connection in the backplane: sends addressed to it reach it from then on. */
  register(connection: HubConnection): Promise<void>;
  /** Forgets the connection in the backplane (its groups go with it). Never rejects. */
  unregister(connection: HubConnection): Promise<void>;
  /** Runs the hub's onConnected; rejects when it throws. */
  onConnected(connection: HubConnection): Promise<void>;
  /** Runs the hub's onDisconnected. Never rejects. */
  onDisconnected(connection: HubConnection, error: Error | undefined): Promise<void>;
  /** The connection opened on this node (counted once) or left it (counted once: closed or moved). */
  opened(connection: HubConnection): void;
  closed(connection: HubConnection, error: Error | undefined): void;
  /** The lifecycle is over: the endpoint forgets the connection. `error` when a step threw unexpectedly. */
  finished(connection: HubConnection, error?: unknown): void;
}

/*
 * The life of one hub connection, from its first byte to its last (ASP.NET Core's RunHubAsync):
 *
 *   openConnection:  handshake → register → answer the handshake → onConnected → dispatch
 *   endConnection:   [transport lost → resume window]* → onDisconnected → unregister
 *
 * In between, the connection runs on its transport's events, and an idle connection holds no suspended
 * call (one would cost about a kilobyte per connection): the end of its transport starts endConnection.
 * A connection taken over from another node ("adopted") opens straight into dispatch: its handshake,
 * registration and onConnected happened there. One that moves away ends at "moved": it lives on at the
 * other node, which runs its onDisconnected when its time comes.
 */

/** Opens a connection; once messages are dispatched it returns, and its transport's end calls endConnection. */
export async function openConnection(
  connection: HubConnection,
  host: LifecycleHost,
  start: "new" | "adopted",
): Promise<void> {
  try {
    if (start === "new") {
      // 1. The client names its protocol (a failed or late handshake closes the connection: nothing to undo).
      if (!(await connection.handshake())) return host.finished(connection);

      // 2. Register before answering, so a client that learns it is connected can be reached from any node.
      try {
        await host.register(connection);
      } catch {
        connection.close("Connection closed with an error.", true);
        return host.finished(connection);
      }
      if (!connection.isConnected) {
        await host.unregister(connection); // the client left meanwhile
        return host.finished(connection);
      }

      // 3. Answer the handshake; messages delivered meanwhile follow the answer.
      connection.completeHandshake();
      host.opened(connection);

      // 4. onConnected runs before the first invocation (the client's messages wait in the queue).
      try {
        await host.onConnected(connection);
      } catch {
        connection.close("Connection closed with an error.", true);
      }
    } else {
      host.opened(connection);
    }

    // 5. Dispatch. From here the connection reports the end of its transport itself (endConnection);
    //    if it ended while it opened, that end is taken over here.
    const endedMeanwhile = connection.startDispatch();
    if (endedMeanwhile) await endConnection(connection, host, endedMeanwhile);
  } catch (err) {
    host.finished(connection, err);
  }
}

/** The transport ended: wait for the client to resume (stateful), or end the connection for good. */
export async function endConnection(
  connection: HubConnection,
  host: LifecycleHost,
  end: TransportEnd,
): Promise<void> {
  try {
    // 6. A stateful connection whose transport was lost waits for its client (on this node, or by moving
    //    here from another). When it comes back the connection goes on, and reports its next end itself.
    if (end.kind === "lost") {
      const after = await connection.untilResumed();
      if (after === undefined) return;
      if (after.kind === "moved") end = after;
    }
    if (end.kind === "moved") {
      host.closed(connection, undefined); // gone from this node; it lives on at the node it moved to
      return host.finished(connection);
    }

    // 7. onDisconnected (it may still send to others), then the registry forgets the connection.
    await host.onDisconnected(connection, end.error);
    host.closed(connection, end.error);
    await host.unregister(connection);
    host.finished(connection);
  } catch (err) {
    host.finished(connection, err);
  }
}
