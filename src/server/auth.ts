import { createPublicKey, KeyObject } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { createRemoteJWKSet, jwtVerify, type CryptoKey, type JWTPayload, type JWTVerifyGetKey } from "jose";
import type { Identity } from "./options.js";

/** Options of {@link jwtAuthentication}. Give exactly one key source: `secret`, `publicKey` or `jwksUrl`. */
export interface JwtAuthenticationOptions {
  /** A shared secret for HS256/HS384/HS512, at least 32 bytes (a string is taken as UTF-8). */
  secret?: string | Uint8Array;
  /**
   * The issuer's public key for RS*, PS*, ES* or EdDSA: a PEM (SPKI public key or X.509 certificate), a
   * public `KeyObject`, or a public `CryptoKey` with the "verify" usage.
   */
  publicKey?: string | KeyObject | CryptoKey;
  /**
   * The issuer's JSON Web Key Set (http or https), e.g. `https://issuer.example/.well-known/jwks.json`.
   * Fetched on first use and cached (10 minutes; refetched at most every 30 s when a token names an unknown key).
   */
  jwksUrl?: string | URL;
  /**
   * Accepted `alg` values. Default: every algorithm the key source can verify (HS256/384/512 for a secret; for
   * a public key, those of its type and curve; for a JWKS, every asymmetric one). "none" is never accepted.
   */
  algorithms?: string[];
  /** Required `iss`: one value or any of several. Default: not checked. */
  issuer?: string | string[];
  /** Required `aud`: the token must name this audience (or one of these). Default: not checked. */
  audience?: string | string[];
  /**
   * The claim that holds the user id: a claim name, or a dotted path into nested claims ("user.id"). A claim
   * whose name contains dots ("https://example.com/uid") is found by its full name first. Default "sub".
   */
  userIdClaim?: string;
  /**
   * True: a request without a token is refused (401). False: it is let in anonymously. A token that fails
   * verification is refused either way. Default true.
   */
  required?: boolean;
  /** Seconds of clock skew allowed when checking `exp` and `nbf`. Default 5. */
  clockToleranceSec?: number;
  /**
   * True: a token without `exp` is refused (401), so that no credential is good for ever. Its `exp` becomes
   * the identity's `expiresAt`, and the connection is closed then (server option
   * `closeOnAuthenticationExpiration`, on by default). Default true.
   */
  requireExpiration?: boolean;
}

/** What {@link jwtAuthentication} returns: a function for the `authenticate` option of `createServer`. */
export type JwtAuthenticator = (request: IncomingMessage) => Promise<Identity | "unauthorized" | undefined>;

const HMAC = ["HS256", "HS384", "HS512"];
const RSA = ["RS256", "RS384", "RS512"];
const RSA_PSS = ["PS256", "PS384", "PS512"];
const EDDSA = ["EdDSA", "Ed25519"];
const ASYMMETRIC = [...RSA, ...RSA_PSS, "ES256", "ES384", "ES512", ...EDDSA];
/** Node's and WebCrypto's curve names, with the one algorithm each allows. */
const CURVES: Record<string, string> = {
  prime256v1: "ES256",
  secp384r1: "ES384",
  secp521r1: "ES512",
  "P-256": "ES256",
  "P-384": "ES384",
  "P-521": "ES512",
};
const KNOWN_OPTIONS = new Set([
  "secret",
  "publicKey",
  "jwksUrl",
  "algorithms",
  "issuer",
  "audience",
  "userIdClaim",
  "required",
  "clockToleranceSec",
  "requireExpiration",
]);
/** jose error codes that mean "this token is not acceptable", as opposed to "the keys could not be loaded". */
const TOKEN_ERRORS = new Set([
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
]);

/**
 * Authenticates hub requests with bearer JSON Web Tokens, for the `authenticate` option of `createServer`.
 * The token is read from `Authorization: Bearer <token>`, else from the `access_token` query parameter
 * (where browsers put it on WebSocket and Server-Sent Events requests). A verified token becomes
 * `{ userId, claims, expiresAt }` (the user id from `userIdClaim`, the claims the whole payload, `exp` as a
 * Date); a bad, expired or forged token, one without the user id claim, or (by default) one without `exp`
 * answers 401. If a JWKS cannot be fetched the request
 * fails with 500, not 401: the token may be fine. Tokens never appear in errors or logs.
 *
 * @throws TypeError naming the option, for invalid options.
 * @example
 * const server = createServer({
 *   hubs: { "/hubs/chat": ChatHub },
 *   authenticate: jwtAuthentication({
 *     jwksUrl: "https://login.example.com/.well-known/jwks.json",
 *     issuer: "https://login.example.com/",
 *     audience: "chat",
 *   }),
 * });
 */
export function jwtAuthentication(options: JwtAuthenticationOptions): JwtAuthenticator {
  const { key, algorithms, fromJwks } = resolveKey(options);
  const issuer = stringOrList("issuer", options.issuer);
  const audience = stringOrList("audience", options.audience);
  const userIdClaim = options.userIdClaim ?? "sub";
  if (typeof userIdClaim !== "string" || userIdClaim.split(".").some((part) => part === "")) {
    fail("option 'userIdClaim' must be a claim name or a dotted path such as \"user.id\".");
  }
  const required = options.required ?? true;
  if (typeof required !== "boolean") fail("option 'required' must be true or false.");
  const clockTolerance = options.clockToleranceSec ?? 5;
  if (typeof clockTolerance !== "number" || !Number.isFinite(clockTolerance) || clockTolerance < 0) {
    fail("option 'clockToleranceSec' must be a number of seconds, 0 or more.");
  }
  const requireExpiration = options.requireExpiration ?? true;
  if (typeof requireExpiration !== "boolean") fail("option 'requireExpiration' must be true or false.");
  const verifyOptions = {
    algorithms,
    issuer,
    audience,
    clockTolerance,
    requiredClaims: requireExpiration ? ["exp"] : [],
  };

  return async function authenticateJwt(request) {
    const token = bearerToken(request);
    if (token === undefined) return required ? "unauthorized" : undefined;
    if (token === "") return "unauthorized";
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, verifyOptions));
    } catch (error) {
      if (isTokenError(error)) return "unauthorized";
      if (!fromJwks) throw error;
      // The message is jose's or fetch's (no token in it); the cause keeps the details.
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`jwtAuthentication: could not load the keys of option 'jwksUrl': ${reason}`, {
        cause: error,
      });
    }
    const userId = claimAt(payload, userIdClaim);
    if (userId === undefined) return "unauthorized";
    // jose has checked that a present `exp` is a number.
    const expiresAt = payload.exp === undefined ? undefined : new Date(payload.exp * 1000);
    return { userId, claims: payload, expiresAt };
  };
}

/** The token of a request: `Authorization: Bearer`, else `?access_token=`; "" for a malformed bearer header. */
function bearerToken(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined && /^bearer(\s|$)/i.test(header)) {
    const token = header.slice("bearer".length).trim();
    return /^[A-Za-z0-9\-._~+/]+=*$/.test(token) ? token : "";
  }
  const url = request.url ?? "";
  const start = url.indexOf("?");
  if (start < 0) return undefined;
  return new URLSearchParams(url.slice(start + 1)).get("access_token") || undefined;
}

/** The user id at `path` (a claim name, or a dotted path): a non-empty string, or a number as text. */
function claimAt(payload: JWTPayload, path: string): string | undefined {
  let value: unknown = payload;
  if (Object.hasOwn(payload, path)) value = payload[path];
  else {
    for (const part of path.split(".")) {
      if (value === null || typeof value !== "object" || !Object.hasOwn(value, part)) return undefined;
      value = (value as Record<string, unknown>)[part];
    }
  }
  if (typeof value === "string" && value !== "") return value;
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return undefined;
}

function isTokenError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TOKEN_ERRORS.has(code);
}

interface ResolvedKey {
  key: Uint8Array | KeyObject | CryptoKey | JWTVerifyGetKey;
  algorithms: string[];
  fromJwks: boolean;
}

/** Checks the option names and the key source, and picks the algorithms. */
function resolveKey(options: JwtAuthenticationOptions): ResolvedKey {
  if (options === null || typeof options !== "object") fail("the options must be an object.");
  for (const name of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(name)) fail(`unknown option '${name}'.`);
  }
  const sources = (["secret", "publicKey", "jwksUrl"] as const).filter((name) => options[name] !== undefined);
  if (sources.length === 0) fail("give a key source: option 'secret', 'publicKey' or 'jwksUrl'.");
  if (sources.length > 1) {
    fail(`give one key source, not ${sources.map((s) => `'${s}'`).join(" and ")}.`);
  }
  const source = sources[0]!;
  if (source === "secret") {
    return {
      key: secretKey(options.secret),
      ...chooseAlgorithms(options.algorithms, HMAC, source),
      fromJwks: false,
    };
  }
  if (source === "publicKey") {
    const { key, fits } = publicKey(options.publicKey);
    return { key, ...chooseAlgorithms(options.algorithms, fits, source), fromJwks: false };
  }
  const url = jwksUrl(options.jwksUrl);
  return {
    key: createRemoteJWKSet(url),
    ...chooseAlgorithms(options.algorithms, ASYMMETRIC, source),
    fromJwks: true,
  };
}

function secretKey(secret: unknown): Uint8Array {
  const bytes =
    typeof secret === "string"
      ? new TextEncoder().encode(secret)
      : secret instanceof Uint8Array
        ? secret
        : undefined;
  if (bytes === undefined) fail("option 'secret' must be a string or a Uint8Array.");
  if (bytes.length === 0) fail("option 'secret' must not be empty.");
  // RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
  if (bytes.length < 32) fail("option 'secret' must be at least 32 bytes (256 bits) long.");
  return bytes;
}

/** The public key, and the algorithms its type and curve can verify. */
function publicKey(value: unknown): { key: KeyObject | CryptoKey; fits: string[] } {
  if (typeof value === "string") {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value)) {
      fail("option 'publicKey' holds a private key: give the public key (or certificate) instead.");
    }
    let key: KeyObject;
    try {
      key = createPublicKey(value);
    } catch {
      fail("option 'publicKey' is not a PEM public key or X.509 certificate.");
    }
    return { key, fits: keyObjectAlgorithms(key) };
  }
  if (value instanceof KeyObject) {
    if (value.type !== "public")
      fail(`option 'publicKey' must be a public key, not a ${value.type} KeyObject.`);
    return { key: value, fits: keyObjectAlgorithms(value) };
  }
  if (isCryptoKey(value)) {
    if (value.type !== "public")
      fail(`option 'publicKey' must be a public key, not a ${value.type} CryptoKey.`);
    if (!value.usages.includes("verify"))
      fail("option 'publicKey' is a CryptoKey without the \"verify\" usage.");
    return { key: value, fits: cryptoKeyAlgorithms(value) };
  }
  fail("option 'publicKey' must be a PEM string, a KeyObject or a CryptoKey.");
}

function keyObjectAlgorithms(key: KeyObject): string[] {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "rsa":
      checkRsaSize(details.modulusLength);
      return [...RSA, ...RSA_PSS];
    case "rsa-pss":
      checkRsaSize(details.modulusLength);
      return RSA_PSS;
    case "ec":
      return [curveAlgorithm(details.namedCurve)];
    case "ed25519":
      return EDDSA;
    default:
      return unsupportedKey(String(key.asymmetricKeyType));
  }
}

function cryptoKeyAlgorithms(key: CryptoKey): string[] {
  const algorithm = key.algorithm as {
    name: string;
    hash?: { name: string };
    namedCurve?: string;
    modulusLength?: number;
  };
  const bits = algorithm.hash?.name.replace("SHA-", "");
  switch (algorithm.name) {
    case "RSASSA-PKCS1-v1_5":
      checkRsaSize(algorithm.modulusLength);
      return [`RS${bits}`];
    case "RSA-PSS":
      checkRsaSize(algorithm.modulusLength);
      return [`PS${bits}`];
    case "ECDSA":
      return [curveAlgorithm(algorithm.namedCurve)];
    case "Ed25519":
      return EDDSA;
    default:
      return unsupportedKey(algorithm.name);
  }
}

function curveAlgorithm(curve: string | undefined): string {
  const algorithm = curve === undefined ? undefined : CURVES[curve];
  if (algorithm === undefined)
    fail(`option 'publicKey' uses the curve '${curve}'; use P-256, P-384 or P-521.`);
  return algorithm;
}

function checkRsaSize(bits: number | undefined): void {
  if (bits !== undefined && bits < 2048)
    fail(`option 'publicKey' is a ${bits}-bit RSA key; RSA keys need 2048 bits or more.`);
}

function unsupportedKey(type: string): never {
  fail(`option 'publicKey' is a key of type '${type}'; use an RSA, EC (P-256, P-384, P-521) or Ed25519 key.`);
}

function jwksUrl(value: unknown): URL {
  let url: URL | undefined;
  try {
    url = value instanceof URL ? new URL(value.href) : typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== "https:" && url.protocol !== "http:")) {
    fail("option 'jwksUrl' must be an absolute http or https URL.");
  }
  return url;
}

/** The `algorithms` option checked against what the key source can verify, or all of those by default. */
function chooseAlgorithms(
  given: unknown,
  fits: readonly string[],
  source: "secret" | "publicKey" | "jwksUrl",
): { algorithms: string[] } {
  if (given === undefined) return { algorithms: [...fits] };
  if (!Array.isArray(given) || given.length === 0 || given.some((a) => typeof a !== "string")) {
    fail("option 'algorithms' must be a non-empty list of algorithm names such as \"RS256\".");
  }
  for (const algorithm of given as string[]) {
    if (algorithm.toLowerCase() === "none")
      fail("option 'algorithms' must not contain 'none': unsigned tokens are never accepted.");
    if (!fits.includes(algorithm)) {
      fail(
        `option 'algorithms': '${algorithm}' cannot be used with option '${source}' (it fits ${fits.join(", ")}).`,
      );
    }
  }
  return { algorithms: [...new Set(given as string[])] };
}

function stringOrList(name: string, value: unknown): string | string[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0 || list.some((v) => typeof v !== "string" || v === "")) {
    fail(`option '${name}' must be a non-empty string or a list of them.`);
  }
  return value as string | string[];
}

function isCryptoKey(value: unknown): value is CryptoKey {
  return (value as { [Symbol.toStringTag]?: unknown } | null)?.[Symbol.toStringTag] === "CryptoKey";
}

function fail(message: string): never {
  throw new TypeError(`jwtAuthentication: ${message}`);
}
