#!/usr/bin/env node
// The switchboard command: `switchboard demo`, `switchboard start`, `switchboard --help`.
import { createServer as createHttpServer } from "node:http";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { createServer } from "../server/create-server.js";
import { staticFiles } from "../server/static-files.js";
import { ChatHub } from "./demo/chat-hub.js";

const usage = `Usage: switchboard <command> [options]

Commands:
  demo     Start a node with the demo chat hub and its page (what \`npm start\` runs).
  start    Start a node with the demo chat hub, without the page.

Options:
  --port <n>       Port to listen on (default: $PORT or 5000; 0 picks a free one).
  --host <addr>    Address to listen on (default: 127.0.0.1).
  --log-level <l>  trace, debug, info, warn, error or silent (default: $LOG_LEVEL or info).
  -h, --help       Show this text.
`;

const projectRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "log-level": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(usage);
    return values.help || command === "help" ? 0 : 2;
  }
  if (command !== "demo" && command !== "start") {
    process.stderr.write(`Unknown command '${command}'.\n\n${usage}`);
    return 2;
  }
  const portText = values.port ?? process.env.PORT ?? "5000";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`Option --port must be a port number (0-65535), not '${portText}'.\n`);
    return 2;
  }
  const host = values.host ?? "127.0.0.1";
  const log = pino({ level: values["log-level"] ?? process.env.LOG_LEVEL ?? "info" });

  const switchboard = createServer({ hubs: { "/hubs/chat": ChatHub }, logger: log });
  const require = createRequire(import.meta.url);
  const serveStatic =
    command === "demo"
      ? staticFiles(join(projectRoot, "web"), {
          "/vendor/signalr.min.js": require.resolve("@microsoft/signalr/dist/browser/signalr.min.js"),
        })
      : undefined;
  const http = createHttpServer((req, res) => {
    void (serveStatic?.(req, res) ?? Promise.resolve(false)).then((served) => {
      if (!served) res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    });
  });
  switchboard.attach(http);
  await switchboard.ready();
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, host, () => resolve());
  });
  const address = http.address();
  const url = `http://${host}:${typeof address === "object" && address ? address.port : port}`;
  log.info({ event: "Listening", url, nodeId: switchboard.nodeId }, `Switchboard is listening on ${url}`);
  if (command === "demo")
    process.stdout.write(
      `\nOpen ${url}/ in two browser tabs and send messages between them.\nCtrl-C stops.\n\n`,
    );

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  log.info({ event: "ShuttingDown" }, "Stopping: clients are told to reconnect.");
  await switchboard.close();
  await new Promise<void>((resolve) => http.close(() => resolve()));
  http.closeAllConnections();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`switchboard: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
