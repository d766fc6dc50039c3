import type { HubConnection } from "./hub-connection.js";

/** The connections of one hub on this node, by connection id. */
export class ConnectionStore {
  private readonly byId = new Map<string, HubConnection>();

  get size(): number {
    return this.byId.size;
  }

  get(connectionId: string): HubConnection | undefined {
    return this.byId.get(connectionId);
  }

  add(connection: HubConnection): void {
    this.byId.set(connection.connectionId, connection);
  }

  /** Forgets the connection, unless its id now belongs to another one (it came back and was added anew). */
  remove(connection: HubConnection): void {
    if (this.byId.get(connection.connectionId) === connection) this.byId.delete(connection.connectionId);
  }

  values(): IterableIterator<HubConnection> {
    return this.byId.values();
  }
}
