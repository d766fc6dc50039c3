import pg from "pg";

/** Counters of one backplane or publisher, for tests, metrics and the admin page. Monotonic. */
export interface PostgresBackplaneStats {
  /** Every SQL statement this instance sent. */
  statements: number;
  /** Statements of the publish path only: one append per batch (its wake-up goes with it). */
  writeStatements: number;
  /** Batches written (each one statement, one transaction). */
  batches: number;
  /** Messages appended to the log (publishes with no recipients are not written). */
  messagesWritten: number;
  /** Log rows read by this node (only rows addressed to it). */
  messagesRead: number;
  /** Calls to the handler's deliver. */
  deliveries: number;
  /** Sends that needed no database because no other node was registered (node-arrivals.ts). */
  sendsWhileAlone: number;
  /** Rows addressed to this node that it took from wake-ups, without reading the log. */
  messagesFromNotices: number;
  /** Log read statements. */
  reads: number;
  /** Wake-ups sent (each inside the statement that wrote the rows). */
  notifications: number;
  /** NOTIFY wake-ups received that named this node. */
  wakeups: number;
  /** Times the LISTEN connection was re-established after a loss. */
  listenReconnects: number;
  /** The highest seq this node has read up to (0 for a publisher). */
  cursor: number;
  /** Batches retried because a connection moved while they were written (log.ts, "Moves"). */
  moveRetries: number;
  /** Connections this node took over from another node / handed over to another node. */
  movesIn: number;
  movesOut: number;
  /** Nodes this node swept: by their heartbeat timeout / because their database session ended. */
  sweptByTimeout: number;
  sweptByLock: number;
  /** Log writes and reads that failed (each also logged). */
  errors: number;
}

export function emptyStats(): PostgresBackplaneStats {
  return {
    statements: 0,
    writeStatements: 0,
    batches: 0,
    messagesWritten: 0,
    messagesRead: 0,
    deliveries: 0,
    sendsWhileAlone: 0,
    messagesFromNotices: 0,
    reads: 0,
    notifications: 0,
    wakeups: 0,
    listenReconnects: 0,
    cursor: 0,
    moveRetries: 0,
    movesIn: 0,
    movesOut: 0,
    sweptByTimeout: 0,
    sweptByLock: 0,
    errors: 0,
  };
}

/**
 * The text of each named statement, as first used. pg compares a named statement's text with the one
 * it prepared on every call, which flattened the caller's freshly built text (an append is ~5.6 KB) into
 * a copy per call. Passing the same string each time makes pg's comparison an identity check. A name
 * stands for one text (names carry their schema's hash, names.ts): another text under a known name is a
 * bug, refused here. (Comparing costs nothing for a text built once, as the append's is: names.ts.)
 */
class StatementTexts {
  private readonly texts = new Map<string, string>();

  /** The query config for pg; an Error when `name` was used before with another text. */
  config(text: string, values: unknown[] | undefined, name: string | undefined): pg.QueryConfig | Error {
    if (name === undefined) return { text, values };
    const known = this.texts.get(name);
    if (known === undefined) this.texts.set(name, text);
    else if (known !== text) {
      return new Error(`The statement '${name}' was prepared with a different text.`);
    }
    return { text: known ?? text, values, name };
  }
}

/** The pool, with every statement counted. Named statements are prepared once per connection. */
export class Sql {
  private readonly texts = new StatementTexts();

  constructor(
    readonly pool: pg.Pool,
    readonly stats: PostgresBackplaneStats,
  ) {}

  /** A property, not a method: callers pass `sql.query` on as it is, with no bind per call. */
  readonly query = <R extends pg.QueryResultRow>(
    text: string,
    values?: unknown[],
    name?: string,
  ): Promise<pg.QueryResult<R>> => {
    this.stats.statements++;
    const config = this.texts.config(text, values, name);
    return config instanceof Error ? Promise.reject(config) : this.pool.query<R>(config);
  };

  /** Runs `work` on one connection inside BEGIN … COMMIT (ROLLBACK on error). */
  async transaction<T>(work: (query: Sql["query"]) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
      this.stats.statements++;
      return client.query<R>(text, values);
    };
    try {
      await query("BEGIN");
      const result = await work(query);
      await query("COMMIT");
      client.release();
      return result;
    } catch (err) {
      const rolledBack = await client.query("ROLLBACK").then(
        () => true,
        () => false,
      );
      client.release(!rolledBack); // a connection that cannot even roll back is destroyed, not reused
      throw err;
    }
  }
}

/** A pool for one backplane or publisher: server-side statement timeout, TCP keep-alive, named. */
export function createPool(options: {
  connectionString: string;
  poolSize: number;
  statementTimeoutMs: number;
  applicationName: string;
  onError: (err: unknown) => void;
}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize,
    // The database cancels a statement that runs too long, so a timed-out publish rolls back: the caller's
    // rejection then means "not written", never "written but reported failed".
    statement_timeout: options.statementTimeoutMs,
    connectionTimeoutMillis: options.statementTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: options.applicationName,
  });
  // An idle client whose backend dies emits 'error' on the pool; unhandled, it would crash the process.
  pool.on("error", options.onError);
  boundCheckouts(pool, options.statementTimeoutMs + 5000, options.onError);
  return pool;
}

/**
 * A client-side bound on every statement: on a silently dropped TCP connection the server's
 * statement_timeout never answers, and a statement would wait for TCP keep-alive (minutes), stalling the
 * reader or the writer. A client checked out for longer than `limitMs` is ended, which fails its
 * statement (pg destroys the socket of a client ending with a statement running). A transaction is one
 * checkout: its statements together get the bound, each of them the server's statement_timeout too.
 *
 * One timer for the pool, not pg's `query_timeout`, which arms one per statement: with it, every
 * append's and every read's objects survived two young-generation collections and were promoted
 * (bench scenario 1, nodes run with `--trace-gc-nvp`): the sending node at 1,000/s promoted ~16 MB in
 * 9 s at ~5 ms a scavenge, the receiving node at max 53–56 MB in 10 s with 5–6 mark-compacts; without
 * it 0.3–0.5 MB, ~1.5 ms and none. (Why a timer per statement does that was not found: heap snapshots
 * show nothing holding the objects.)
 */
function boundCheckouts(pool: pg.Pool, limitMs: number, onError: (err: unknown) => void): void {
  const out = new Map<pg.PoolClient, number>();
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    const now = Date.now();
    for (const [client, since] of out) {
      if (now - since < limitMs) continue;
      out.delete(client);
      onError(
        new Error(`A database statement went unanswered for ${now - since} ms: its connection is closed.`),
      );
      client.end().catch(() => {});
    }
    arm();
  };
  const arm = () => {
    if (timer !== undefined || out.size === 0) return;
    timer = setTimeout(check, Math.min(1000, limitMs));
    timer.unref();
  };
  pool.on("acquire", (client) => {
    out.set(client, Date.now());
    arm();
  });
  pool.on("release", (_err, client) => out.delete(client));
  pool.on("remove", (client) => out.delete(client));
}
