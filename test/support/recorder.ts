import type { BackplaneEventHandler, BackplaneMessage } from "../../src/backplane/backplane.js";

/** A backplane event handler that keeps everything delivered, per connection. */
export class Recorder implements BackplaneEventHandler {
  readonly received = new Map<string, BackplaneMessage[]>();

  deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage): void {
    for (const id of connectionIds) {
      const key = `${hub}\n${id}`;
      let list = this.received.get(key);
      if (!list) this.received.set(key, (list = []));
      list.push(message);
    }
  }

  /** The messages a connection received. */
  of(connectionId: string, hub = "/chat"): BackplaneMessage[] {
    return this.received.get(`${hub}\n${connectionId}`) ?? [];
  }

  /** The first argument of each message a connection received. */
  values(connectionId: string, hub = "/chat"): unknown[] {
    return this.of(connectionId, hub).map((m) => m.arguments[0]);
  }
}
