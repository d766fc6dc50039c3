// Connection ids and self-verifying connection tokens.
//
// The token format (negotiateVersion 1), base64url without padding, 59 characters, or 80 with a home node:
//
//   bytes  0..16  connection id (its base64url is the public connectionId)
//   bytes 16..20  issued-at, whole seconds since the Unix epoch, unsigned big-endian
//   byte  20      0x5C when negotiate agreed to stateful reconnect (the token may resume its connection
//                 on any node for as long as the connection lives), 0x5B when it did not
//   bytes 21..28  random nonce
//   bytes 28..44  (80-character tokens only) the home node: the id (a UUID) of the node that negotiated,
//                 where Server-Sent Events and long-polling requests for the connection are forwarded
//   last 16 bytes HMAC-SHA256(secret, LABEL ‖ every byte before the MAC ‖ UTF-8 user id), first 16 bytes
//
// Any node that shares the secret can check a token without having seen the negotiate, so a load
// balancer may send the WebSocket upgrade anywhere. The MAC covers the user id chosen by
// authentication, so a token only starts a connection for the user it was issued to. The issued-at
// time bounds how long a token can start a connection on a node that did not issue it (replays).
// Tokens of nodes older than this byte have a random byte there: one in 256 reads as resumable, which
// only makes a node ask the registry where the connection is (its client never agreed to resume anyway).
// The home node is read before the MAC can be checked (a forwarding node does not know the user): it is
// only a routing hint, and the home node checks the whole token.

import { createHmac, randomFillSync, timingSafeEqual } from "node:crypto";

const ID_BYTES = 16;
const ISSUED_AT_BYTES = 4;
const FLAGS_BYTES = 1;
const NONCE_BYTES = 7;
const RESUMABLE = 0x5c;
const NOT_RESUMABLE = 0x5b;
const HOME_BYTES = 16;
const MAC_BYTES = 16;
const BASE_BYTES = ID_BYTES + ISSUED_AT_BYTES + FLAGS_BYTES + NONCE_BYTES;
const HOME_AT = BASE_BYTES;
/** Token lengths in bytes, without and with a home node. */
const SHORT_TOKEN_BYTES = BASE_BYTES + MAC_BYTES;
const HOMED_TOKEN_BYTES = BASE_BYTES + HOME_BYTES + MAC_BYTES;
const TOKEN_PATTERN = /^(?:[A-Za-z0-9_-]{59}|[A-Za-z0-9_-]{80})$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Domain separation: the secret may be shared with other uses. */
const LABEL = Buffer.from("switchboard connection token v1\n", "utf8");

/** The shortest secret accepted, in bytes. */
export const MIN_SECRET_BYTES = 16;

/** A freshly issued connection: the public id and the secret token the client connects with. */
export interface IssuedConnectionToken {
  connectionId: string;
  connectionToken: string;
  /** When the token was issued, in milliseconds since the epoch (rounded down to whole seconds). */
  issuedAtMs: number;
}

/** What a valid token says. */
export interface VerifiedConnectionToken {
  connectionId: string;
  issuedAtMs: number;
  /** Set when negotiate agreed to stateful reconnect: the token may come back to resume its connection. */
  resumable?: true;
  /** The node that negotiated, for tokens that name one. */
  homeNode?: string;
}

/** Whether `nodeId` can be a token's home node: a UUID. */
export function isHomeNodeId(nodeId: string): boolean {
  return UUID_PATTERN.test(nodeId);
}

function uuidFromBytes(bytes: Buffer): string {
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The token's bytes, or undefined when it is not a token in its one canonical spelling. */
function tokenBytes(token: string): Buffer | undefined {
  if (!TOKEN_PATTERN.test(token)) return undefined;
  const bytes = Buffer.from(token, "base64url");
  // Base64url has spare bits in its last character: insist on the one canonical spelling, so a token
  // cannot be replayed under a second name that maps to the same bytes.
  if (bytes.length !== SHORT_TOKEN_BYTES && bytes.length !== HOMED_TOKEN_BYTES) return undefined;
  return bytes.toString("base64url") === token ? bytes : undefined;
}

/**
 * The home node a token names, read WITHOUT checking its MAC (a forwarding node does not know the user
 * the MAC covers): a routing hint only. Undefined for a token without one, or for anything but a token.
 */
export function tokenHomeNode(token: string): string | undefined {
  const bytes = tokenBytes(token);
  if (bytes === undefined || bytes.length !== HOMED_TOKEN_BYTES) return undefined;
  return uuidFromBytes(bytes.subarray(HOME_AT, HOME_AT + HOME_BYTES));
}

/**
 * When a token was issued (ms since the epoch), read WITHOUT checking its MAC: for a token this node has
 * checked or issued already. Undefined for anything but a token.
 */
export function tokenIssuedAtMs(token: string): number | undefined {
  const bytes = tokenBytes(token);
  return bytes === undefined ? undefined : bytes.readUInt32BE(ID_BYTES) * 1000;
}

/**
 * Random bytes drawn from the CSPRNG 4 KB at a time: one call into OpenSSL per ~170 tokens instead of
 * two per token (they were 3% of a node's CPU in a connect burst). Each byte is handed out once.
 */
const entropy = Buffer.alloc(4096);
let entropyUsed = entropy.length;

function randomInto(target: Buffer, offset: number, length: number): void {
  if (entropyUsed + length > entropy.length) {
    randomFillSync(entropy);
    entropyUsed = 0;
  }
  entropy.copy(target, offset, entropyUsed, entropyUsed + length);
  entropyUsed += length;
}

/** A new public connection id: base64url of 16 random bytes (22 characters). */
export function newConnectionId(): string {
  const id = Buffer.allocUnsafe(ID_BYTES);
  randomInto(id, 0, ID_BYTES);
  return id.toString("base64url");
}

function checkSecret(secret: Uint8Array): void {
  if (secret.byteLength < MIN_SECRET_BYTES) {
    throw new RangeError(`The connection token secret must be at least ${MIN_SECRET_BYTES} bytes long.`);
  }
}

function mac(secret: Uint8Array, signed: Uint8Array, userId: string | undefined): Buffer {
  const hmac = createHmac("sha256", secret);
  hmac.update(LABEL);
  hmac.update(signed);
  hmac.update(userId ?? "", "utf8");
  return hmac.digest().subarray(0, MAC_BYTES);
}

/**
 * Issues a connection id and its token.
 * @param secret the cluster-wide secret (at least {@link MIN_SECRET_BYTES} bytes).
 * @param userId the authenticated user the token is bound to; undefined for anonymous users.
 * @param nowMs the current time, for tests.
 * @param resumable whether negotiate agreed to stateful reconnect.
 * @param homeNode the id (a UUID) of the node that negotiated, for forwarding; omitted: a 59-character token.
 * @throws RangeError when the secret is too short; TypeError when the home node is not a UUID.
 */
export function issueConnectionToken(
  secret: Uint8Array,
  userId: string | undefined,
  nowMs: number = Date.now(),
  resumable = false,
  homeNode?: string,
): IssuedConnectionToken {
  checkSecret(secret);
  if (homeNode !== undefined && !isHomeNodeId(homeNode)) {
    throw new TypeError(`A token's home node must be a UUID, not '${homeNode}'.`);
  }
  const bytes = Buffer.alloc(homeNode === undefined ? SHORT_TOKEN_BYTES : HOMED_TOKEN_BYTES);
  const signed = bytes.length - MAC_BYTES;
  randomInto(bytes, 0, ID_BYTES);
  const issuedAtSeconds = Math.floor(nowMs / 1000);
  bytes.writeUInt32BE(issuedAtSeconds >>> 0, ID_BYTES);
  bytes[ID_BYTES + ISSUED_AT_BYTES] = resumable ? RESUMABLE : NOT_RESUMABLE;
  randomInto(bytes, ID_BYTES + ISSUED_AT_BYTES + FLAGS_BYTES, NONCE_BYTES);
  if (homeNode !== undefined) Buffer.from(homeNode.replaceAll("-", ""), "hex").copy(bytes, HOME_AT);
  mac(secret, bytes.subarray(0, signed), userId).copy(bytes, signed);
  return {
    connectionId: bytes.subarray(0, ID_BYTES).toString("base64url"),
    connectionToken: bytes.toString("base64url"),
    issuedAtMs: issuedAtSeconds * 1000,
  };
}

/**
 * Checks a token's MAC and returns what it holds, or undefined when it is not a valid token for this
 * secret and user. Freshness is the caller's business (see {@link isTokenFresh}).
 * @throws RangeError when the secret is too short.
 */
export function verifyConnectionToken(
  token: string,
  secret: Uint8Array,
  userId: string | undefined,
): VerifiedConnectionToken | undefined {
  checkSecret(secret);
  const bytes = tokenBytes(token);
  if (bytes === undefined) return undefined;
  const signed = bytes.length - MAC_BYTES;
  const expected = mac(secret, bytes.subarray(0, signed), userId);
  if (!timingSafeEqual(expected, bytes.subarray(signed))) return undefined;
  const verified: VerifiedConnectionToken = {
    connectionId: bytes.subarray(0, ID_BYTES).toString("base64url"),
    issuedAtMs: bytes.readUInt32BE(ID_BYTES) * 1000,
  };
  if (bytes[ID_BYTES + ISSUED_AT_BYTES] === RESUMABLE) verified.resumable = true;
  if (bytes.length === HOMED_TOKEN_BYTES) {
    verified.homeNode = uuidFromBytes(bytes.subarray(HOME_AT, HOME_AT + HOME_BYTES));
  }
  return verified;
}

/**
 * Whether a token issued at `issuedAtMs` may still start a connection. Tokens from up to `lifetimeMs`
 * in the future are accepted too, to tolerate clock skew between nodes.
 */
export function isTokenFresh(issuedAtMs: number, lifetimeMs: number, nowMs: number = Date.now()): boolean {
  // issuedAt is rounded down to a second: allow that second.
  return nowMs - issuedAtMs <= lifetimeMs + 1000 && issuedAtMs - nowMs <= lifetimeMs;
}
