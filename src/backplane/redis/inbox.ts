/**
 * Reads this node's inbox from its own cursor: a blocking XREAD on a connection of its own, so it wakes
 * the moment an entry is appended. A failed read (Redis restarting, a failover, the connection killed) is
 * retried from the same entry id: nothing appended is skipped or read twice.
 */
import { text, type RedisLink, type Reply } from "./link.js";

/** Entries read per XREAD. */
const READ_COUNT = 1000;
/** How long one XREAD blocks when the inbox is empty (so a stop is seen within it). */
const BLOCK_MS = 1000;

export class InboxReader {
  private stopped = false;
  private running: Promise<void> | undefined;

  constructor(
    private readonly link: RedisLink,
    private readonly inboxKey: string,
    /** The id of the last entry read (the reader goes on after it). */
    private lastId: string,
    private readonly onEntry: (entryId: string, payload: Buffer) => void,
    private readonly onReadState: (err: unknown | undefined) => void,
  ) {}

  get cursor(): string {
    return this.lastId;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops reading: the blocked read is cut off (its link dropped), not waited for. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.link.destroy();
    await this.running;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let reply: Reply;
      try {
        reply = await this.link.send(this.inboxKey, [
          "XREAD",
          "COUNT",
          String(READ_COUNT),
          "BLOCK",
          String(BLOCK_MS),
          "STREAMS",
          this.inboxKey,
          this.lastId,
        ]);
        failures = 0;
        this.onReadState(undefined);
      } catch (err) {
        if (this.stopped) return;
        this.onReadState(err);
        await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** failures++, 1000)));
        continue;
      }
      if (this.stopped || !Array.isArray(reply) || reply.length === 0) continue;
      const entries = (reply[0] as Reply[])[1] as Reply[];
      for (const entry of entries) {
        const [id, fields] = entry as [Reply, Reply[]];
        this.lastId = text(id)!;
        // One field, `b` (protocol.ts); an entry without it is not ours and is skipped.
        for (let i = 0; i + 1 < fields.length; i += 2) {
          if (text(fields[i]) === "b") this.onEntry(this.lastId, fields[i + 1] as Buffer);
        }
      }
    }
  }
}
