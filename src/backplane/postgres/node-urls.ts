/**
 * The other nodes' URLs, as this node last read them from the `nodes` table (the node directory that
 * forwarded Server-Sent Events and long-polling requests use).
 */
export class NodeUrls {
  private urls = new Map<string, string>();
  private readAt = 0;
  private reading: Promise<void> | undefined;

  /** @param read reads every live node's URL from the database. */
  constructor(private readonly read: () => Promise<Map<string, string>>) {}

  /**
   * The URL of a node. Served from the copy, which is read again when a node is not in it, at most once a
   * second: forwarded requests cost no query, and tokens naming made-up nodes cannot make this node query
   * the database for each of them. Undefined when no live node has that id (or the read failed).
   */
  async get(nodeId: string): Promise<string | undefined> {
    const known = this.urls.get(nodeId);
    if (known !== undefined || Date.now() - this.readAt < 1000) return known;
    this.reading ??= this.read()
      .then((urls) => {
        this.urls = urls;
      })
      .finally(() => {
        this.readAt = Date.now();
        this.reading = undefined;
      });
    await this.reading.catch(() => {});
    return this.urls.get(nodeId);
  }
}
