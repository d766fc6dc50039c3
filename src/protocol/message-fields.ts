/**
 * Field checks and message builders shared by the JSON and MessagePack readers (internal to this folder).
 * Both codecs enforce the same rules, modelled on what ASP.NET Core and the official TypeScript client reject,
 * and both return messages in one normal form: optional fields are present only when they carry something
 * (no empty `headers`, no empty `streamIds`, `allowReconnect` only when true).
 */
import {
  MessageType,
  type CancelInvocationMessage,
  type CloseMessage,
  type CompletionMessage,
  type InvocationMessage,
  type MessageHeaders,
  type StreamInvocationMessage,
  type StreamItemMessage,
} from "./messages.js";
import { ProtocolError } from "./protocol-error.js";

/** The message type names used in error texts, by wire type id. */
export const messageTypeNames: Readonly<Record<number, string>> = {
  1: "Invocation",
  2: "StreamItem",
  3: "Completion",
  4: "StreamInvocation",
  5: "CancelInvocation",
  6: "Ping",
  7: "Close",
  8: "Ack",
  9: "Sequence",
};

/** A ProtocolError that names the message type: `Invalid Completion message: …`. */
export function invalidMessage(type: number, detail: string): ProtocolError {
  return new ProtocolError(`Invalid ${messageTypeNames[type] ?? "hub"} message: ${detail}`);
}

/** The message of a parser's exception, for our error text (a parser may throw anything). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** True for objects made by JSON.parse or a MessagePack map (not arrays, dates, binaries or class instances). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A required non-empty string (`target`, `invocationId` of messages 2–5). */
export function readRequiredString(type: number, name: string, value: unknown): string {
  if (value === undefined || value === null) {
    throw invalidMessage(type, `missing required property '${name}'.`);
  }
  if (typeof value !== "string" || value === "") {
    throw invalidMessage(type, `expected '${name}' to be a non-empty string.`);
  }
  return value;
}

/** The optional invocation id of an Invocation: absent or null means a non-blocking call. */
export function readOptionalInvocationId(type: number, value: unknown): string | undefined {
  return value === undefined || value === null ? undefined : readRequiredString(type, "invocationId", value);
}

/** Invocation arguments: a required array. */
export function readArguments(type: number, value: unknown): unknown[] {
  if (value === undefined) throw invalidMessage(type, "missing required property 'arguments'.");
  if (!Array.isArray(value)) throw invalidMessage(type, "expected 'arguments' to be an array.");
  return value;
}

/** Headers: a map of strings; returns undefined when absent or empty. */
export function readHeaders(type: number, value: unknown): MessageHeaders | undefined {
  if (value === undefined) return undefined;
  if (!isPlainObject(value)) throw invalidMessage(type, "expected 'headers' to be a map of strings.");
  let empty = true;
  for (const key in value) {
    if (typeof value[key] !== "string") {
      throw invalidMessage(type, `expected header '${key}' to be a string.`);
    }
    empty = false;
  }
  return empty ? undefined : (value as MessageHeaders);
}

/** Upload stream ids: an array of strings; returns undefined when absent or empty. */
export function readStreamIds(type: number, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((id) => typeof id === "string")) {
    throw invalidMessage(type, "expected 'streamIds' to be an array of strings.");
  }
  return value.length === 0 ? undefined : (value as string[]);
}

/** An optional error text (Completion, Close); null means absent. */
export function readOptionalError(type: number, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw invalidMessage(type, "expected 'error' to be a string.");
  return value;
}

/** Close's `allowReconnect`: a boolean when present; null means absent. */
export function readAllowReconnect(type: number, value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value !== "boolean") throw invalidMessage(type, "expected 'allowReconnect' to be a boolean.");
  return value;
}

/** The sequence id of Ack and Sequence: a required integer. */
export function readSequenceId(type: number, value: unknown): number {
  if (value === undefined || value === null) {
    throw invalidMessage(type, "missing required property 'sequenceId'.");
  }
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw invalidMessage(type, "expected 'sequenceId' to be an integer.");
  }
  return value;
}

/** Builds an Invocation or StreamInvocation with only the optional fields that are set. */
export function invocation(
  type: typeof MessageType.Invocation | typeof MessageType.StreamInvocation,
  headers: MessageHeaders | undefined,
  invocationId: string | undefined,
  target: string,
  args: unknown[],
  streamIds: string[] | undefined,
): InvocationMessage | StreamInvocationMessage {
  const message = { type, target, arguments: args } as InvocationMessage;
  if (headers !== undefined) message.headers = headers;
  if (invocationId !== undefined) message.invocationId = invocationId;
  if (streamIds !== undefined) message.streamIds = streamIds;
  return message as InvocationMessage | StreamInvocationMessage;
}

/** Builds a StreamItem. */
export function streamItem(
  headers: MessageHeaders | undefined,
  invocationId: string,
  item: unknown,
): StreamItemMessage {
  const message: StreamItemMessage = { type: MessageType.StreamItem, invocationId, item };
  if (headers !== undefined) message.headers = headers;
  return message;
}

/** Builds a Completion: an error, a value (`hasResult`), or void. */
export function completion(
  headers: MessageHeaders | undefined,
  invocationId: string,
  outcome: { error: string } | { result: unknown } | undefined,
): CompletionMessage {
  const message: CompletionMessage = { type: MessageType.Completion, invocationId, hasResult: false };
  if (headers !== undefined) message.headers = headers;
  if (outcome !== undefined && "error" in outcome) message.error = outcome.error;
  else if (outcome !== undefined) {
    message.result = outcome.result;
    message.hasResult = true;
  }
  return message;
}

/** Builds a CancelInvocation. */
export function cancelInvocation(
  headers: MessageHeaders | undefined,
  invocationId: string,
): CancelInvocationMessage {
  const message: CancelInvocationMessage = { type: MessageType.CancelInvocation, invocationId };
  if (headers !== undefined) message.headers = headers;
  return message;
}

/** Builds a Close; `allowReconnect` is set only when true. */
export function close(error: string | undefined, allowReconnect: boolean): CloseMessage {
  const message: CloseMessage = { type: MessageType.Close };
  if (error !== undefined) message.error = error;
  if (allowReconnect) message.allowReconnect = true;
  return message;
}
