import { startEmbeddedPostgres, type EmbeddedPostgres } from "../backplane/postgres/embedded.js";

/** Where a node's PostgreSQL is: the one the user named, or one we started. */
export interface Database {
  url: string;
  /** Set when we started it: stop it on exit. */
  embedded?: EmbeddedPostgres;
}

/**
 * The database for a command: `--database-url`, else $DATABASE_URL, else an embedded PostgreSQL whose files live
 * under `dataDir` (reused by the next start).
 */
export async function openDatabase(url: string | undefined, dataDir: string): Promise<Database> {
  const given = url ?? process.env.DATABASE_URL;
  if (given) {
    try {
      new URL(given);
    } catch {
      // The value is not echoed: it may hold a password.
      throw new Error("--database-url (or $DATABASE_URL) must be a postgres:// URL.");
    }
    return { url: given };
  }
  const embedded = await startEmbeddedPostgres({ dataDir });
  return { url: embedded.url, embedded };
}
