import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/**
 * API keys. The server keeps only the SHA-256 of each key (hex), so a leaked configuration does not leak a key.
 * Keys are high-entropy random strings (generate one with `openssl rand -base64 32`), which is why a plain
 * SHA-256 is enough here, where a password would need a slow hash.
 */

/**
 * The hex SHA-256 of an API key: what goes into `apiKeyHashes`.
 * @example
 * hashApiKey("my-secret-key"); // "1311f8fc80a7ea28d78dd7723f09c44c1754cd35160ca8e7133ae3d7f636a19a"
 * // The same from a shell: printf %s "$KEY" | sha256sum
 */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** Decodes the configured hashes. @throws TypeError for anything that is not 64 hex digits. */
export function parseKeyHashes(hashes: readonly string[]): Buffer[] {
  return hashes.map((hash, index) => {
    if (typeof hash !== "string" || !/^[0-9a-fA-F]{64}$/.test(hash))
      throw new TypeError(
        `Option 'apiKeyHashes[${index}]' must be the hex SHA-256 of a key (64 hex digits; see hashApiKey).`,
      );
    return Buffer.from(hash, "hex");
  });
}

/** The key a request presents: `Authorization: Bearer <key>` or else `X-API-Key: <key>`. */
export function presentedKey(req: IncomingMessage): string | undefined {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = req.headers["x-api-key"];
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && value.trim() !== "" ? value.trim() : undefined;
}

/**
 * Whether `key` is one of the configured keys. Compares digests (fixed length) with timingSafeEqual and
 * always checks every hash, so the time taken says nothing about which key, or how much of one, matched.
 */
export function keyMatches(key: string, hashes: readonly Buffer[]): boolean {
  const digest = createHash("sha256").update(key, "utf8").digest();
  let matched = false;
  for (const hash of hashes) if (timingSafeEqual(digest, hash)) matched = true;
  return matched;
}
