/**
 * A connection's state as it travels from the node that held it to the node its client resumed on
 * (stateful reconnect landing elsewhere). The backplane carries these bytes without reading them.
 *
 * One MessagePack array: `[1, connectionId, protocol, protocolVersion, items, logFields, buffer,
 * awaitedResults]`, where
 * `items` is `[[key, value]…]` (context.items; values that MessagePack cannot carry are left behind) and
 * `buffer` is `[totalCount, everSentUpTo, nextReceivingId, latestReceivedId, [[id, frame]…]]`, the
 * unacknowledged frames already serialised in the connection's protocol, and `awaitedResults` the ids of
 * the server invocations the client has not answered yet (client results). Readers ignore trailing items.
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import type { MessageBufferState } from "./message-buffer.js";

/** What a connection hands to the node that takes it over. */
export interface ConnectionState {
  connectionId: string;
  protocol: string;
  protocolVersion: number;
  items: [string, unknown][];
  logFields: Record<string, unknown>;
  buffer: MessageBufferState;
  /** Server invocations sent to the client and not answered yet (their answers go where the ids say). */
  awaitedResults: string[];
}

const FORMAT = 1;
const encoder = new Encoder();
const decoder = new Decoder();

/**
 * Encodes a connection's state. Items whose values MessagePack cannot carry (functions, class instances
 * with cycles, symbols) are left out and named in `dropped`.
 */
export function encodeConnectionState(state: ConnectionState): { bytes: Uint8Array; dropped: string[] } {
  const items: [string, unknown][] = [];
  const dropped: string[] = [];
  for (const [key, value] of state.items) {
    try {
      encoder.encode(value);
      items.push([key, value]);
    } catch {
      dropped.push(key);
    }
  }
  const { buffer } = state;
  const bytes = encoder.encode([
    FORMAT,
    state.connectionId,
    state.protocol,
    state.protocolVersion,
    items,
    state.logFields,
    [
      buffer.totalCount,
      buffer.everSentUpTo,
      buffer.nextReceivingId,
      buffer.latestReceivedId,
      buffer.entries.map((e) => [e.id, e.frame]),
    ],
    state.awaitedResults,
  ]);
  return { bytes, dropped };
}

/** @throws Error when the bytes are not a connection state of a known format. */
export function decodeConnectionState(bytes: Uint8Array): ConnectionState {
  const value = decoder.decode(bytes);
  if (!Array.isArray(value) || value[0] !== FORMAT)
    throw new Error("Not a connection state this node can read.");
  const [, connectionId, protocol, protocolVersion, items, logFields, buffer, awaitedResults] =
    value as unknown[];
  if (
    typeof connectionId !== "string" ||
    typeof protocol !== "string" ||
    typeof protocolVersion !== "number"
  ) {
    throw new Error("Malformed connection state.");
  }
  if (
    !Array.isArray(items) ||
    !Array.isArray(buffer) ||
    typeof logFields !== "object" ||
    logFields === null
  ) {
    throw new Error("Malformed connection state.");
  }
  const [totalCount, everSentUpTo, nextReceivingId, latestReceivedId, entries] = buffer as unknown[];
  if (
    typeof totalCount !== "number" ||
    typeof everSentUpTo !== "number" ||
    typeof nextReceivingId !== "number" ||
    typeof latestReceivedId !== "number" ||
    !Array.isArray(entries)
  ) {
    throw new Error("Malformed connection state.");
  }
  return {
    connectionId,
    protocol,
    protocolVersion,
    items: items as [string, unknown][],
    logFields: logFields as Record<string, unknown>,
    awaitedResults: Array.isArray(awaitedResults)
      ? awaitedResults.filter((id): id is string => typeof id === "string")
      : [],
    buffer: {
      totalCount,
      everSentUpTo,
      nextReceivingId,
      latestReceivedId,
      entries: (entries as [number, Uint8Array][]).map(([id, frame]) => ({
        id,
        frame: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength),
      })),
    },
  };
}
