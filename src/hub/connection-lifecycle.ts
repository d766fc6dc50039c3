import type { HubConnection } from "./hub-connection.js";

/** What the lifecycle asks of the hub endpoint: the registry, and the hub's two hooks. */
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
}

/**
 * The life of one hub connection, from its first byte to its last (ASP.NET Core's RunHubAsync):
 *
 *   handshake → register → answer the handshake → onConnected → dispatch
 *     → [transport lost → resume window]* → onDisconnected → unregister
 *
 * A connection taken over from another node (`adopted`) starts at dispatch: its handshake, registration
 * and onConnected happened there. One that moves away ends at "moved": it lives on at the other node,
 * which runs its onDisconnected when its time comes.
 */
export async function runConnection(
  connection: HubConnection,
  host: LifecycleHost,
  start: "new" | "adopted",
): Promise<void> {
  if (start === "adopted") host.opened(connection);
  if (start === "new") {
    // 1. The client names its protocol (a failed or late handshake closes the connection: nothing to undo).
    if (!(await connection.handshake())) return;

    // 2. Register before answering, so a client that learns it is connected can be reached from any node.
    try {
      await host.register(connection);
    } catch {
      connection.close("Connection closed with an error.", true);
      return;
    }
    if (!connection.isConnected) return host.unregister(connection); // the client left meanwhile

    // 3. Answer the handshake; messages delivered meanwhile follow the answer.
    connection.completeHandshake();
    host.opened(connection);

    // 4. onConnected runs before the first invocation (the client's messages wait in the queue).
    try {
      await host.onConnected(connection);
    } catch {
      connection.close("Connection closed with an error.", true);
    }
  }

  // 5. Dispatch until the transport ends. A stateful connection whose transport was lost waits for its
  //    client to come back (on this node, or by moving here from another), and goes on where it was.
  connection.startDispatch();
  let end = await connection.untilTransportEnds();
  while (end.kind === "lost" && (await connection.untilResumed())) {
    end = await connection.untilTransportEnds();
  }
  if (end.kind === "moved") {
    host.closed(connection, undefined); // gone from this node; it lives on at the node it moved to
    return;
  }

  // 6. onDisconnected (it may still send to others), then the registry forgets the connection.
  const error = end.kind === "closed" || end.kind === "lost" ? end.error : undefined;
  await host.onDisconnected(connection, error);
  host.closed(connection, error);
  await host.unregister(connection);
}
