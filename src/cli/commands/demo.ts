import type { Logger as PinoLogger } from "pino";
import { openDatabase } from "../database.js";
import { listenFailure } from "../listen-failure.js";
import { cliLog, formatLogLine, type LogFormat } from "../log.js";
import { startLoadBalancer } from "../load-balancer.js";
import { spawnNode, type NodeProcess } from "../node-process.js";

export interface DemoSettings {
  port: number;
  host: string;
  nodes: number;
  databaseUrl: string | undefined;
  dataDir: string;
  /** The backplane's schema; default "switchboard". */
  schema: string | undefined;
  log: PinoLogger;
  /** How the nodes' warnings forwarded to this terminal look. */
  logFormat: LogFormat;
}

/**
 * The whole idea in one command: a PostgreSQL (embedded unless a URL is given), several nodes as separate
 * processes, and a round-robin load balancer without sticky sessions in front. Resolves with a stop function.
 */
export async function runDemo(settings: DemoSettings): Promise<{ url: string; stop(): Promise<void> }> {
  const { log } = settings;
  // The balancer takes its port first: a port in use stops the demo before anything else has started.
  const balancer = await startLoadBalancer([], settings.port, settings.host).catch((err: unknown) => {
    throw new Error(listenFailure(err, settings.host, settings.port), { cause: err });
  });
  const database = await openDatabase(settings.databaseUrl, settings.dataDir).catch(async (err: unknown) => {
    await balancer.close();
    throw err;
  });
  if (database.embedded)
    cliLog.embeddedPostgres(log, "Embedded PostgreSQL is up.", { url: redact(database.url) });
  const nodes: NodeProcess[] = [];
  try {
    // One at a time: the first runs the migrations, the others find them done.
    for (let i = 0; i < settings.nodes; i++) {
      nodes.push(
        await spawnNode(
          [
            "--database-url",
            database.url,
            ...(settings.schema === undefined ? [] : ["--schema", settings.schema]),
            "--page",
            "--admin",
            "--demo-mode",
            "--host",
            settings.host,
          ],
          (line) => forwardWarnings(line, settings.logFormat),
        ),
      );
    }
  } catch (err) {
    await balancer.close();
    await Promise.all(nodes.map((n) => n.stop()));
    await database.embedded?.stop();
    throw err;
  }
  balancer.setBackends(nodes.map((n) => n.url));
  for (const node of nodes) cliLog.nodeStarted(log, node.url, node.nodeId, node.pid);
  return {
    url: balancer.url,
    async stop() {
      await balancer.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await database.embedded?.stop();
    },
  };
}

/** Node logs are JSON lines; the demo's terminal shows only their warnings and errors, in its format. */
function forwardWarnings(line: string, format: LogFormat): void {
  try {
    const entry = JSON.parse(line) as { level?: number };
    if ((entry.level ?? 0) >= 40) process.stderr.write(withNewline(formatLogLine(line, format)));
  } catch {
    if (line.trim()) process.stderr.write(`${line}\n`);
  }
}

const withNewline = (text: string) => (text.endsWith("\n") ? text : `${text}\n`);

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}
