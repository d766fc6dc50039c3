import { spawn } from "node:child_process";
import { dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { childExecArgv } from "./node-process.js";

/** Where a node's PostgreSQL is: the one the user named, or one we started. */
export interface Database {
  url: string;
  /** Set when we started it: stop it on exit. */
  embedded?: { stop(): Promise<void> };
}

/** database-keeper.ts when we run from source, .js when built. */
const here = fileURLToPath(import.meta.url);
const keeperScript = join(dirname(here), `database-keeper${extname(here)}`);

/**
 * The database for a command: `--database-url`, else $DATABASE_URL, else an embedded PostgreSQL whose files live
 * under `dataDir` (reused by the next start), kept by a process of its own (see database-keeper.ts).
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
  return startKeeper(dataDir);
}

function startKeeper(dataDir: string): Promise<Database> {
  const keeper = spawn(process.execPath, [...childExecArgv(), keeperScript, dataDir], {
    detached: true, // a session of its own: the terminal's Ctrl-C is for the command, which stops it last
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => keeper.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    keeper.once("message", (reply: { url?: string; error?: string }) => {
      if (reply.url === undefined)
        return reject(new Error(reply.error ?? "The embedded PostgreSQL did not start."));
      resolve({
        url: reply.url,
        embedded: {
          async stop() {
            if (keeper.connected) keeper.send("stop");
            await exited;
          },
        },
      });
    });
    void exited.then(() => reject(new Error("The embedded PostgreSQL's keeper exited before it started.")));
  });
}
