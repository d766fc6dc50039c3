import { Hub } from "../../hub/hub.js";

/** The demo's hub: a tiny chat where each browser tab is one connection, and tabs can join rooms. */
export class ChatHub extends Hub {
  override async onConnected(): Promise<void> {
    await this.clients.others.send("joined", this.context.connectionId);
  }

  override async onDisconnected(): Promise<void> {
    await this.clients.others.send("left", this.context.connectionId);
  }

  /** Where this connection landed: its id and the node serving it. */
  whoAmI(): { connectionId: string; node: string } {
    return { connectionId: this.context.connectionId, node: this.context.nodeId };
  }

  async broadcast(text: string): Promise<void> {
    await this.clients.all.send("message", {
      from: this.context.connectionId,
      text: String(text).slice(0, 2000),
      at: Date.now(),
    });
  }

  async direct(connectionId: string, text: string): Promise<number> {
    const result = await this.clients.client(connectionId).send("message", {
      from: this.context.connectionId,
      text: String(text).slice(0, 2000),
      at: Date.now(),
      direct: true,
    });
    return result.connections;
  }

  async joinRoom(room: string): Promise<void> {
    await this.groups.add(this.context.connectionId, room);
  }

  async toRoom(room: string, text: string): Promise<void> {
    await this.clients.group(room).send("message", {
      from: this.context.connectionId,
      room,
      text: String(text).slice(0, 2000),
      at: Date.now(),
    });
  }
}
