// The hub the examples share: a chat where everyone sees everything, with rooms.
import { Hub } from "../src/index.js";

export class ChatHub extends Hub {
  async send(text: string): Promise<void> {
    await this.clients.all.send("message", this.context.connectionId, text);
  }

  async join(room: string): Promise<void> {
    await this.groups.add(this.context.connectionId, room);
  }

  async sendToRoom(room: string, text: string): Promise<void> {
    await this.clients.group(room).send("message", this.context.connectionId, text);
  }
}
