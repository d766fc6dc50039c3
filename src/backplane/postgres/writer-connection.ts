import pg from "pg";
import { clientConfig, StatementTexts, type ConnectionOptions, type PostgresBackplaneStats } from "./sql.js";

/**
 * The one connection a log writer appends on, kept open between batches, instead of a pool's.
 *
 * - A pool hands out a client a tick later (pg-pool schedules every checkout), so a batch went on the wire
 *   only after whatever else the event loop had queued. Here an append is written as the writer takes it.
 * - At 1,000 sends a second, a pool's append kept the sending node's short-lived objects alive through two
 *   young-generation collections, so they were promoted and collected by major GCs: ~16 MB in 9 s and 5 ms
 *   per scavenge, against 0.4 MB and 1.4 ms here (bench scenario 1 at 1,000/s, the sending node run with
 *   `--trace-gc-nvp`). Taking out the pool's read timer (pg's `query_timeout`, one timer per query) did
 *   the same; so does pg's callback form here, where its promise form did not. The writer bounds each
 *   batch with a timer of its own instead, and calls {@link abandon} for one that goes unanswered.
 *
 * Statements are counted into the owner's stats, as the pool's are.
 */
export class WriterConnection {
  private client: pg.Client | undefined;
  private connecting: Promise<pg.Client> | undefined;
  private closed = false;
  private readonly texts = new StatementTexts();

  constructor(
    private readonly options: ConnectionOptions,
    private readonly stats: PostgresBackplaneStats,
    /** Errors of the connection itself (the query that was running gets its own rejection). */
    private readonly onError: (err: unknown) => void,
  ) {}

  /**
   * Runs a statement; connects first when no connection is open (at the first batch, or after one was
   * lost or abandoned). A property, not a method: it is passed on as pg's `query`.
   */
  readonly query = <R extends pg.QueryResultRow>(
    text: string,
    values?: unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>> => {
    this.stats.statements++;
    const config = this.texts.config(text, values, name);
    if (config instanceof Error) return Promise.reject(config);
    const client = this.client;
    if (client !== undefined) return run<R>(client, config);
    return this.connect().then((connected) => run<R>(connected, config));
  };

  /**
   * Gives up the connection of a statement that went unanswered (a silently dropped TCP connection never
   * answers): ending it with a statement running destroys the socket, which rejects that statement.
   */
  abandon(): void {
    const client = this.client;
    if (client === undefined) return;
    this.client = undefined;
    client.end().catch(() => {});
  }

  /** Closes the connection; statements after this are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private connect(): Promise<pg.Client> {
    if (this.closed) return Promise.reject(new Error("The log writer's connection is closed."));
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(clientConfig(this.options));
    // A lost connection is dropped, and the next statement opens another. Without a listener an
    // 'error' event would crash the process.
    const lost = () => {
      if (this.client === client) this.client = undefined;
    };
    client.on("error", (err) => {
      lost();
      this.onError(err);
    });
    client.on("end", lost);
    await client.connect();
    if (this.closed) {
      await client.end().catch(() => {});
      throw new Error("The log writer's connection is closed.");
    }
    this.client = client;
    return client;
  }
}

/**
 * pg's callback form. Its promise form (and, on a pool, its `query_timeout` timer) kept every append's
 * objects alive through two young-generation collections (see {@link WriterConnection}).
 */
function run<R extends pg.QueryResultRow>(
  client: pg.Client,
  config: pg.QueryConfig,
): Promise<pg.QueryResult<R>> {
  return new Promise((resolve, reject) => {
    client.query<R>(config, (err: Error | null, result: pg.QueryResult<R>) =>
      err ? reject(err) : resolve(result),
    );
  });
}
