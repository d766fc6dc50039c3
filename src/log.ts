/**
 * The one logging module of the code base: the Logger every layer writes to, the default one, and how a
 * layer's catalogue writes its events.
 *
 * Each layer keeps a catalogue (`*.log.ts`): one named function per event, so call sites hold no raw
 * strings. Every event is written as `{ event, eventId, ...fields }` with a message for people; `event` and
 * `eventId` are stable, to grep and alert on. Ids are unique across the code base, by layer:
 *
 * | ids     | layer                          |
 * | ------- | ------------------------------ |
 * | 1–99    | transport                      |
 * | 100–199 | hub                            |
 * | 200–299 | HTTP server API                |
 * | 300–399 | raw connections                |
 * | 400–499 | PostgreSQL backplane           |
 * | 500–599 | server (createServer)          |
 * | 600–699 | command line                   |
 * | 700–799 | Redis backplane                |
 *
 * Never log a token, an API key, a password or a message's arguments: connection ids are public, those
 * are not.
 */
import { pino } from "pino";

/** What every layer writes to: pino's Logger fits as is, and so does anything with these four methods. */
export interface Logger {
  debug(fields: object, message?: string): void;
  info(fields: object, message?: string): void;
  warn(fields: object, message?: string): void;
  error(fields: object, message?: string): void;
}

export type LogLevel = keyof Logger;

/** Drops everything (tests, and applications that want no log at all). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

let fallback: Logger | undefined;

/**
 * The logger of anything created without one (a server, a backplane, a publisher): JSON lines on stdout,
 * at $LOG_LEVEL (default info). Made on first use, and shared.
 */
export function defaultLogger(): Logger {
  return (fallback ??= pino({ level: process.env.LOG_LEVEL ?? "info" }));
}

/** Writes one event of a catalogue. */
export function emit(
  log: Logger,
  level: LogLevel,
  eventId: number,
  event: string,
  fields: object,
  message: string,
): void {
  log[level]({ event, eventId, ...fields }, message);
}

/**
 * An error as log fields: its type, message, code and stack, and nothing else (an error's own fields
 * could hold request data).
 */
export function errorFields(err: unknown): { err: Record<string, unknown> } {
  if (!(err instanceof Error)) return { err: { type: "NonError", message: String(err) } };
  const code = (err as { code?: unknown }).code;
  return {
    err: {
      type: err.name,
      message: err.message,
      ...(code === undefined ? {} : { code }),
      ...(err.stack === undefined ? {} : { stack: err.stack }),
    },
  };
}
