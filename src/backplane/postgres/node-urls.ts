import type { Query } from "./log.js";
import type { SchemaNames } from "./names.js";

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

/** Records the URL at which the other nodes reach this node. */
export async function advertiseNodeUrl(
  query: Query,
  n: SchemaNames,
  nodeId: string,
  url: string,
): Promise<void> {
  await query(`UPDATE ${n.nodes} SET url = $2 WHERE id = $1`, [nodeId, url]);
}

/** The URLs the live nodes advertised, by node id. */
export async function nodeUrls(
  query: Query,
  n: SchemaNames,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const result = await query<{ id: string; url: string }>(
    `SELECT id::text AS id, url FROM ${n.nodes}
     WHERE url IS NOT NULL AND heartbeat_at >= now() - make_interval(secs => $1::double precision / 1000)`,
    [timeoutMs],
  );
  return new Map(result.rows.map((row) => [row.id, row.url]));
}
