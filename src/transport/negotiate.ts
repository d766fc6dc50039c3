// The negotiate exchange: version parsing and response shapes, as ASP.NET Core's HttpConnectionDispatcher
// writes them. No I/O.

import { issueConnectionToken, newConnectionId } from "./connection-token.js";
import type { FrameFormat, TransportName } from "./transport-connection.js";

/** The highest negotiate version this server speaks; higher requests are clamped to it. */
export const MAX_NEGOTIATE_VERSION = 1;

/** The lowest negotiate version accepted. */
export const MIN_NEGOTIATE_VERSION = 0;

/** One entry of `availableTransports`. */
export interface AvailableTransport {
  transport: TransportName;
  transferFormats: FrameFormat[];
}

/** The successful negotiate answer (`connectionToken` only for version 1 and later). */
export interface NegotiateResponse {
  negotiateVersion: number;
  connectionId: string;
  connectionToken?: string;
  availableTransports: AvailableTransport[];
  /** Present (true) only when the client asked for stateful reconnect and the endpoint allows it. */
  useStatefulReconnect?: true;
}

const TRANSFER_FORMATS: Readonly<Record<TransportName, FrameFormat[]>> = {
  WebSockets: ["Text", "Binary"],
  ServerSentEvents: ["Text"],
  LongPolling: ["Text", "Binary"],
};

/** The transports in the order the client should try them, each with the formats it carries. */
export function availableTransports(transports: readonly TransportName[]): AvailableTransport[] {
  return transports.map((transport) => ({ transport, transferFormats: [...TRANSFER_FORMATS[transport]] }));
}

/** .NET's int.TryParse: optional surrounding white space and sign, 32-bit range. */
const INTEGER = /^\s*[+-]?\d+\s*$/;

/**
 * Reads the `negotiateVersion` query value. Missing means 0; versions above the maximum are clamped.
 * @returns the version to use, or the `error` text to answer with (in a 200 JSON body, as .NET does).
 */
export function parseNegotiateVersion(
  raw: string | undefined,
  minimum = MIN_NEGOTIATE_VERSION,
): { version: number } | { error: string } {
  const value = raw === undefined ? 0 : INTEGER.test(raw) ? Number(raw.trim()) : NaN;
  if (!Number.isSafeInteger(value) || value > 2 ** 31 - 1 || value < -(2 ** 31)) {
    return { error: "The client requested a non-integer protocol version." };
  }
  if (value < minimum) {
    return {
      error: `The client requested version '${value}', but the server does not support this version.`,
    };
  }
  return { version: Math.min(value, MAX_NEGOTIATE_VERSION) };
}

/** A new connection as negotiate creates it. */
export interface Negotiation {
  response: NegotiateResponse;
  /** What the client will send as `id`: the token (version 1) or the connection id (version 0). */
  key: string;
  /** Whether stateful reconnect was agreed (the client asked, the endpoint allows it, version 1). */
  resumable: boolean;
}

/**
 * Whether the client asked for stateful reconnect: `useStatefulReconnect=true` (the name in any case, as
 * ASP.NET Core reads it).
 */
export function wantsStatefulReconnect(raw: string | undefined): boolean {
  return raw?.toLowerCase() === "true";
}

/**
 * Creates the ids of a new connection and the negotiate answer.
 * @param statefulReconnect whether the client asked for stateful reconnect and the endpoint allows it;
 *   agreed only with version 1 (version 0 has no token to come back with).
 */
export async function negotiateConnection(
  version: number,
  userId: string | undefined,
  statefulReconnect: boolean,
  options: {
    transports: readonly TransportName[];
    tokenSecret: () => Promise<Uint8Array> | Uint8Array;
    tokenLifetimeMs: number;
    /** The node id written into tokens as their home (for forwarding); none without forwarding. */
    homeNode?: string;
  },
): Promise<Negotiation> {
  const transports = availableTransports(options.transports);
  if (version === 0) {
    // Version 0 has no token: the id is the credential, and only the issuing node knows it.
    const connectionId = newConnectionId();
    const response = { negotiateVersion: 0, connectionId, availableTransports: transports };
    return { response, key: connectionId, resumable: false };
  }
  const issued = issueConnectionToken(
    await options.tokenSecret(),
    userId,
    Date.now(),
    statefulReconnect,
    options.homeNode,
  );
  const { connectionId, connectionToken } = issued;
  const response: NegotiateResponse = {
    negotiateVersion: version,
    connectionId,
    connectionToken,
    availableTransports: transports,
  };
  if (statefulReconnect) response.useStatefulReconnect = true;
  return { response, key: connectionToken, resumable: statefulReconnect };
}
