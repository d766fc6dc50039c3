// The command's logger: short coloured lines for a person at a terminal, JSON lines for everything else.
import { pino, type Logger as PinoLogger } from "pino";
import { emit, type Logger } from "../log.js";
import { build as prettyStream, prettyFactory } from "pino-pretty";

export type LogFormat = "pretty" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["pretty", "json"];

/** Pretty when stdout is a terminal, JSON when it is a file or a pipe (a log collector, the tests). */
export function defaultLogFormat(): LogFormat {
  return process.stdout.isTTY ? "pretty" : "json";
}

const prettyOptions = {
  colorize: process.stdout.isTTY === true,
  translateTime: "HH:MM:ss.l",
  ignore: "pid,hostname",
  singleLine: true,
};

export function createLogger(level: string, format: LogFormat): PinoLogger {
  return format === "json"
    ? pino({ level })
    : pino({ level }, prettyStream({ ...prettyOptions, sync: true }));
}

/** A node process's JSON log line, as the chosen format shows it (the demo forwards its nodes' warnings). */
export function formatLogLine(line: string, format: LogFormat): string {
  if (format === "json") return line;
  try {
    return prettyFactory({ ...prettyOptions, colorize: process.stderr.isTTY === true })(JSON.parse(line));
  } catch {
    return line; // not a JSON record: as it is
  }
}

/** The command line's log events (ids 600–699; see src/log.ts for the style). */
export const cliLog = {
  embeddedPostgres: (log: Logger, message: string, fields: object = {}) =>
    emit(log, "info", 601, "EmbeddedPostgres", fields, message),
  shuttingDown: (log: Logger, message: string) => emit(log, "info", 602, "ShuttingDown", {}, message),
  nodeStarted: (log: Logger, url: string, nodeId: string, pid: number) =>
    emit(log, "info", 603, "NodeStarted", { url, nodeId, pid }, `Node ${nodeId.slice(0, 8)} at ${url}`),
  /** The parent process of `switchboard demo` and the cluster tests read this line to learn the URL. */
  listening: (log: Logger, url: string, nodeId: string) =>
    emit(
      log,
      "info",
      604,
      "Listening",
      { url, nodeId, pid: process.pid },
      `Switchboard node listening on ${url}`,
    ),
};
