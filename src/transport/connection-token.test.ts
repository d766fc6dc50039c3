import { describe, expect, it } from "vitest";
import {
  isTokenFresh,
  issueConnectionToken,
  tokenHomeNode,
  newConnectionId,
  verifyConnectionToken,
} from "./connection-token.js";

const secret = new Uint8Array(32).fill(1);
const otherSecret = new Uint8Array(32).fill(2);

describe("connection ids and tokens", () => {
  it("a connection id is base64url of 16 random bytes", () => {
    const id = newConnectionId();
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(Buffer.from(id, "base64url")).toHaveLength(16);
    expect(newConnectionId()).not.toBe(id);
  });

  it("a token verifies with the same secret and user and yields its connection id", () => {
    const issued = issueConnectionToken(secret, "alice", 1_700_000_000_500);
    expect(issued.connectionToken).toMatch(/^[A-Za-z0-9_-]{59}$/);
    expect(issued.issuedAtMs).toBe(1_700_000_000_000);
    expect(verifyConnectionToken(issued.connectionToken, secret, "alice")).toEqual({
      connectionId: issued.connectionId,
      issuedAtMs: 1_700_000_000_000,
    });
  });

  it("a token does not verify with another secret or another user", () => {
    const { connectionToken } = issueConnectionToken(secret, "alice");
    expect(verifyConnectionToken(connectionToken, otherSecret, "alice")).toBeUndefined();
    expect(verifyConnectionToken(connectionToken, secret, "mallory")).toBeUndefined();
    expect(verifyConnectionToken(connectionToken, secret, undefined)).toBeUndefined();
  });

  it("an anonymous token verifies for an empty or missing user id", () => {
    const { connectionToken } = issueConnectionToken(secret, undefined);
    expect(verifyConnectionToken(connectionToken, secret, undefined)).toBeDefined();
    expect(verifyConnectionToken(connectionToken, secret, "")).toBeDefined();
  });

  it("a tampered, truncated or non-canonical token does not verify", () => {
    const { connectionToken, connectionId } = issueConnectionToken(secret, undefined);
    const flipped = (connectionToken[0] === "A" ? "B" : "A") + connectionToken.slice(1);
    expect(verifyConnectionToken(flipped, secret, undefined)).toBeUndefined();
    expect(verifyConnectionToken(connectionToken.slice(0, -1), secret, undefined)).toBeUndefined();
    expect(verifyConnectionToken(connectionId, secret, undefined)).toBeUndefined();
    expect(verifyConnectionToken(`${connectionToken}=`, secret, undefined)).toBeUndefined();
    // The last character carries 2 spare bits: a different spelling of the same bytes is refused.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(connectionToken.at(-1)!);
    const sibling = connectionToken.slice(0, -1) + alphabet[last ^ 1];
    expect(Buffer.from(sibling, "base64url")).toEqual(Buffer.from(connectionToken, "base64url"));
    expect(verifyConnectionToken(sibling, secret, undefined)).toBeUndefined();
  });

  it("a token with a home node is 80 characters; the home node is signed, and readable without the user", () => {
    const home = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0ff";
    const issued = issueConnectionToken(secret, "alice", 1_700_000_000_500, true, home);
    expect(issued.connectionToken).toMatch(/^[A-Za-z0-9_-]{80}$/);
    expect(verifyConnectionToken(issued.connectionToken, secret, "alice")).toEqual({
      connectionId: issued.connectionId,
      issuedAtMs: 1_700_000_000_000,
      resumable: true,
      homeNode: home,
    });
    expect(tokenHomeNode(issued.connectionToken)).toBe(home);
    // Another home in the same bytes breaks the MAC.
    const bytes = Buffer.from(issued.connectionToken, "base64url");
    bytes[30]! ^= 1;
    const moved = bytes.toString("base64url");
    expect(tokenHomeNode(moved)).not.toBe(home);
    expect(verifyConnectionToken(moved, secret, "alice")).toBeUndefined();
  });

  it("has no home node for a short token or a non-token, and refuses a home that is not a UUID", () => {
    expect(tokenHomeNode(issueConnectionToken(secret, undefined).connectionToken)).toBeUndefined();
    expect(tokenHomeNode("not a token")).toBeUndefined();
    expect(tokenHomeNode(newConnectionId())).toBeUndefined();
    expect(() => issueConnectionToken(secret, undefined, Date.now(), false, "node-1")).toThrow(
      "A token's home node must be a UUID, not 'node-1'.",
    );
  });

  it("a secret shorter than 16 bytes is refused", () => {
    expect(() => issueConnectionToken(new Uint8Array(8), undefined)).toThrow(RangeError);
  });

  it("freshness allows the lifetime in both directions (clock skew) and nothing beyond", () => {
    const now = 1_000_000_000;
    expect(isTokenFresh(now - 60_000, 60_000, now)).toBe(true);
    expect(isTokenFresh(now - 62_000, 60_000, now)).toBe(false);
    expect(isTokenFresh(now + 60_000, 60_000, now)).toBe(true);
    expect(isTokenFresh(now + 61_000, 60_000, now)).toBe(false);
  });
});
