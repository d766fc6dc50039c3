// A process of its own for the embedded PostgreSQL of `switchboard start` and `demo`. It runs in a session
// of its own (spawned detached), so the Ctrl-C a terminal sends to the command's whole process group
// never reaches PostgreSQL: the command stops its nodes first and the database last, and nothing warns
// about a database that went away under a node that was still stopping.
//
// The parent reads `{ url }` (or `{ error }`) from IPC; "stop", or the parent going away, stops the server.
import { startEmbeddedPostgres } from "../backplane/postgres/embedded.js";

type Reply = { url: string } | { error: string };

const dataDir = process.argv[2];
const send = (reply: Reply) => {
  if (process.connected) process.send?.(reply);
};

if (dataDir === undefined || process.send === undefined) {
  process.stderr.write("database-keeper: run by the switchboard command only.\n");
  process.exit(2);
}

// The parent gone (even killed) while the server starts: stop it as soon as it is up, then exit.
let parentGone = false;
let stop: (() => void) | undefined;
process.on("disconnect", () => {
  parentGone = true;
  stop?.();
});
try {
  const server = await startEmbeddedPostgres({ dataDir });
  let stopping: Promise<void> | undefined;
  stop = () =>
    void (stopping ??= server
      .stop()
      .catch(() => {})
      .finally(() => process.exit(0)));
  process.on("message", (message) => {
    if (message === "stop") stop?.();
  });
  if (parentGone) stop();
  else send({ url: server.url });
} catch (err) {
  send({ error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
}
