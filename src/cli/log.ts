// The command's logger: short coloured lines for a person at a terminal, JSON lines for everything else.
import { pino, type Logger } from "pino";
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

export function createLogger(level: string, format: LogFormat): Logger {
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
