// jwtAuthentication on its own: keys of every kind (secret, PEM, KeyObject, CryptoKey, a JWKS served over
// HTTP), the claims it checks, where it finds the token, anonymous access, and its option errors.
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  SignJWT,
  UnsecuredJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jwtAuthentication, type JwtAuthenticationOptions } from "./auth.js";

const secret = "a-test-secret-that-is-32-bytes-long!";
const otherSecret = "another-secret-that-is-32-bytes-long";

/** A request as the authenticate hook sees it: headers and the URL with its query. */
function request(headers: Record<string, string> = {}, url = "/hubs/chat/negotiate"): IncomingMessage {
  return { headers, url, method: "POST" } as unknown as IncomingMessage;
}
const withBearer = (token: string) => request({ authorization: `Bearer ${token}` });

async function sign(
  payload: JWTPayload,
  key: Uint8Array | CryptoKey | string,
  alg = "HS256",
  expiresIn: string | number = "5m",
  kid?: string,
): Promise<string> {
  const jwt = new SignJWT(payload)
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setIssuedAt()
    .setExpirationTime(expiresIn);
  return jwt.sign(typeof key === "string" ? new TextEncoder().encode(key) : key);
}
const nowSec = () => Math.floor(Date.now() / 1000);

function errorOf(create: () => unknown): string {
  try {
    create();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  throw new Error("expected the options to be refused");
}

describe("HS256 with a secret", () => {
  const authenticate = jwtAuthentication({ secret });

  it("turns a valid token into the sub as user id and the payload as claims", async () => {
    const token = await sign({ sub: "alice", role: "admin" }, secret);
    const identity = await authenticate(withBearer(token));
    expect(identity).toEqual({
      userId: "alice",
      claims: { sub: "alice", role: "admin", iat: expect.any(Number), exp: expect.any(Number) },
      expiresAt: expect.any(Date),
    });
  });

  it("gives the token's exp as expiresAt, to the second", async () => {
    const exp = nowSec() + 120;
    const identity = await authenticate(withBearer(await sign({ sub: "alice" }, secret, "HS256", exp)));
    expect(identity).toMatchObject({ expiresAt: new Date(exp * 1000) });
  });

  it("refuses a token without exp by default, and accepts one with requireExpiration: false", async () => {
    const forever = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(secret));
    expect(await authenticate(withBearer(forever))).toBe("unauthorized");
    const lenient = jwtAuthentication({ secret, requireExpiration: false });
    expect(await lenient(withBearer(forever))).toEqual({
      userId: "alice",
      claims: { sub: "alice" },
      expiresAt: undefined,
    });
  });

  it("accepts a Uint8Array secret and HS384/HS512 tokens by default", async () => {
    const bytes = new TextEncoder().encode(secret);
    const auth = jwtAuthentication({ secret: bytes });
    for (const alg of ["HS256", "HS384", "HS512"]) {
      expect(await auth(withBearer(await sign({ sub: "alice" }, bytes, alg)))).toMatchObject({
        userId: "alice",
      });
    }
  });

  it("refuses an expired token, beyond the clock tolerance", async () => {
    const token = await sign({ sub: "alice" }, secret, "HS256", nowSec() - 60);
    expect(await authenticate(withBearer(token))).toBe("unauthorized");
  });

  it("tolerates 5 s of clock skew by default, and what clockToleranceSec says", async () => {
    const justExpired = await sign({ sub: "alice" }, secret, "HS256", nowSec() - 2);
    expect(await authenticate(withBearer(justExpired))).toMatchObject({ userId: "alice" });
    const strict = jwtAuthentication({ secret, clockToleranceSec: 0 });
    expect(await strict(withBearer(justExpired))).toBe("unauthorized");
  });

  it("refuses a token that is not valid yet (nbf)", async () => {
    const token = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "HS256" })
      .setNotBefore(nowSec() + 60)
      .sign(new TextEncoder().encode(secret));
    expect(await authenticate(withBearer(token))).toBe("unauthorized");
  });

  it("refuses a token signed with another secret", async () => {
    const forged = await sign({ sub: "alice" }, otherSecret);
    expect(await authenticate(withBearer(forged))).toBe("unauthorized");
  });

  it("refuses a token whose payload was changed after signing", async () => {
    const [header, , signature] = (await sign({ sub: "mallory" }, secret)).split(".");
    const payload = Buffer.from(JSON.stringify({ sub: "alice", exp: nowSec() + 300 })).toString("base64url");
    expect(await authenticate(withBearer(`${header}.${payload}.${signature}`))).toBe("unauthorized");
  });

  it("refuses an unsigned token (alg none) and garbage", async () => {
    const unsigned = new UnsecuredJWT({ sub: "alice" }).setExpirationTime("5m").encode();
    expect(await authenticate(withBearer(unsigned))).toBe("unauthorized");
    expect(await authenticate(withBearer("not.a.jwt"))).toBe("unauthorized");
    expect(await authenticate(withBearer("nodots"))).toBe("unauthorized");
  });

  it("refuses algorithms left out of the algorithms option", async () => {
    const auth = jwtAuthentication({ secret, algorithms: ["HS256"] });
    expect(await auth(withBearer(await sign({ sub: "alice" }, secret, "HS512")))).toBe("unauthorized");
    expect(await auth(withBearer(await sign({ sub: "alice" }, secret, "HS256")))).toMatchObject({
      userId: "alice",
    });
  });

  it("checks the issuer when one is set", async () => {
    const auth = jwtAuthentication({ secret, issuer: ["https://a.example", "https://b.example"] });
    expect(
      await auth(withBearer(await sign({ sub: "alice", iss: "https://b.example" }, secret))),
    ).toMatchObject({
      userId: "alice",
    });
    expect(await auth(withBearer(await sign({ sub: "alice", iss: "https://evil.example" }, secret)))).toBe(
      "unauthorized",
    );
    expect(await auth(withBearer(await sign({ sub: "alice" }, secret)))).toBe("unauthorized");
  });

  it("checks the audience when one is set", async () => {
    const auth = jwtAuthentication({ secret, audience: "chat" });
    expect(
      await auth(withBearer(await sign({ sub: "alice", aud: ["billing", "chat"] }, secret))),
    ).toMatchObject({
      userId: "alice",
    });
    expect(await auth(withBearer(await sign({ sub: "alice", aud: "billing" }, secret)))).toBe("unauthorized");
    expect(await auth(withBearer(await sign({ sub: "alice" }, secret)))).toBe("unauthorized");
  });

  it("refuses a valid token without the user id claim", async () => {
    expect(await authenticate(withBearer(await sign({ name: "Alice" }, secret)))).toBe("unauthorized");
    expect(await authenticate(withBearer(await sign({ sub: "" }, secret)))).toBe("unauthorized");
  });

  it("reads the user id from a dotted path, a dotted claim name, or a number", async () => {
    const nested = jwtAuthentication({ secret, userIdClaim: "user.id" });
    expect(await nested(withBearer(await sign({ user: { id: "u-7" } }, secret)))).toMatchObject({
      userId: "u-7",
    });
    expect(await nested(withBearer(await sign({ user: { id: 42 } }, secret)))).toMatchObject({
      userId: "42",
    });
    expect(await nested(withBearer(await sign({ user: { name: "x" } }, secret)))).toBe("unauthorized");
    expect(await nested(withBearer(await sign({ user: "u-7" }, secret)))).toBe("unauthorized");
    expect(await nested(withBearer(await sign({ user: { id: { deep: 1 } } }, secret)))).toBe("unauthorized");
    const namespaced = jwtAuthentication({ secret, userIdClaim: "https://example.com/uid" });
    expect(
      await namespaced(withBearer(await sign({ "https://example.com/uid": "bob" }, secret))),
    ).toMatchObject({
      userId: "bob",
    });
  });

  it("does not walk into the prototype for a user id", async () => {
    const auth = jwtAuthentication({ secret, userIdClaim: "constructor.name" });
    expect(await auth(withBearer(await sign({ sub: "alice" }, secret)))).toBe("unauthorized");
  });
});

describe("public keys", () => {
  let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
  let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
  let otherEc: { publicKey: CryptoKey; privateKey: CryptoKey };

  beforeAll(async () => {
    rsa = await generateKeyPair("RS256");
    ec = await generateKeyPair("ES256");
    otherEc = await generateKeyPair("ES256");
  });

  it("verifies RS256 with the public key as a CryptoKey, a PEM or a KeyObject", async () => {
    const token = await sign({ sub: "alice" }, rsa.privateKey, "RS256");
    const pem = await exportSPKI(rsa.publicKey);
    for (const publicKey of [rsa.publicKey, pem, createPublicKey(pem)]) {
      expect(await jwtAuthentication({ publicKey })(withBearer(token))).toMatchObject({ userId: "alice" });
    }
  });

  it("verifies ES256, and refuses a token signed by another key pair", async () => {
    const auth = jwtAuthentication({ publicKey: ec.publicKey });
    expect(await auth(withBearer(await sign({ sub: "alice" }, ec.privateKey, "ES256")))).toMatchObject({
      userId: "alice",
    });
    expect(await auth(withBearer(await sign({ sub: "alice" }, otherEc.privateKey, "ES256")))).toBe(
      "unauthorized",
    );
  });

  it("verifies EdDSA with an Ed25519 PEM", async () => {
    const pair = await generateKeyPair("EdDSA");
    const auth = jwtAuthentication({ publicKey: await exportSPKI(pair.publicKey) });
    expect(await auth(withBearer(await sign({ sub: "alice" }, pair.privateKey, "EdDSA")))).toMatchObject({
      userId: "alice",
    });
  });

  it("refuses an HS256 token keyed with the public key's PEM (algorithm confusion)", async () => {
    const pem = await exportSPKI(rsa.publicKey);
    const auth = jwtAuthentication({ publicKey: pem });
    expect(await auth(withBearer(await sign({ sub: "alice" }, pem, "HS256")))).toBe("unauthorized");
  });

  it("refuses an RS256 token when the key is an EC key", async () => {
    const auth = jwtAuthentication({ publicKey: ec.publicKey });
    expect(await auth(withBearer(await sign({ sub: "alice" }, rsa.privateKey, "RS256")))).toBe(
      "unauthorized",
    );
  });
});

describe("a JWKS served over HTTP", () => {
  let jwksServer: Server;
  let base: string;
  let signing: { publicKey: CryptoKey; privateKey: CryptoKey };
  let fetches = 0;

  beforeAll(async () => {
    signing = await generateKeyPair("RS256");
    const jwk: JWK = { ...(await exportJWK(signing.publicKey)), kid: "key-1", alg: "RS256", use: "sig" };
    jwksServer = createServer((req, res) => {
      fetches++;
      if (req.url === "/.well-known/jwks.json") {
        res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ keys: [jwk] }));
      } else {
        res.writeHead(503).end();
      }
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => jwksServer.close(resolve));
  });

  it("verifies a token whose kid the JWKS holds, fetching the set once", async () => {
    const auth = jwtAuthentication({
      jwksUrl: `${base}/.well-known/jwks.json`,
      issuer: "https://login.example",
    });
    const before = fetches;
    for (const user of ["alice", "bob"]) {
      const token = await new SignJWT({ sub: user, iss: "https://login.example" })
        .setProtectedHeader({ alg: "RS256", kid: "key-1" })
        .setExpirationTime("5m")
        .sign(signing.privateKey);
      expect(await auth(withBearer(token))).toMatchObject({
        userId: user,
        claims: { iss: "https://login.example" },
      });
    }
    expect(fetches - before).toBe(1);
  });

  it("refuses a token signed by a key the JWKS does not hold", async () => {
    const auth = jwtAuthentication({ jwksUrl: new URL("/.well-known/jwks.json", base) });
    const stranger = await generateKeyPair("RS256");
    expect(
      await auth(withBearer(await sign({ sub: "alice" }, stranger.privateKey, "RS256", "5m", "key-1"))),
    ).toBe("unauthorized");
    expect(
      await auth(withBearer(await sign({ sub: "alice" }, stranger.privateKey, "RS256", "5m", "key-2"))),
    ).toBe("unauthorized");
  });

  it("fails (a server error, not a 401) when the JWKS cannot be fetched, without the token in the error", async () => {
    const auth = jwtAuthentication({ jwksUrl: `${base}/down` });
    const token = await sign({ sub: "alice" }, signing.privateKey, "RS256", "5m", "key-1");
    const error = await auth(withBearer(token)).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(/^jwtAuthentication: could not load the keys of option 'jwksUrl': /);
    expect(String(error?.message)).not.toContain(token);
  });
});

describe("where the token is read from", () => {
  const authenticate = jwtAuthentication({ secret });
  let alice: string;
  beforeAll(async () => {
    alice = await sign({ sub: "alice" }, secret);
  });

  it("reads the Authorization header, with any case of 'Bearer'", async () => {
    expect(await authenticate(request({ authorization: `bearer ${alice}` }))).toMatchObject({
      userId: "alice",
    });
  });

  it("reads the access_token query parameter (browsers, on WebSocket and SSE requests)", async () => {
    const req = request({}, `/hubs/chat?id=abc&access_token=${encodeURIComponent(alice)}`);
    expect(await authenticate(req)).toMatchObject({ userId: "alice" });
  });

  it("prefers the header to the query", async () => {
    const forged = await sign({ sub: "mallory" }, otherSecret);
    const headerWins = request({ authorization: `Bearer ${alice}` }, `/hubs/chat?access_token=${forged}`);
    expect(await authenticate(headerWins)).toMatchObject({ userId: "alice" });
    const badHeader = request({ authorization: `Bearer ${forged}` }, `/hubs/chat?access_token=${alice}`);
    expect(await authenticate(badHeader)).toBe("unauthorized");
  });

  it("ignores another Authorization scheme and falls back on the query", async () => {
    const req = request({ authorization: "Basic dXNlcjpwYXNz" }, `/hubs/chat?access_token=${alice}`);
    expect(await authenticate(req)).toMatchObject({ userId: "alice" });
    expect(await authenticate(request({ authorization: "Basic dXNlcjpwYXNz" }))).toBe("unauthorized");
  });

  it("counts no token, and an empty access_token, as no token", async () => {
    expect(await authenticate(request())).toBe("unauthorized");
    expect(await authenticate(request({}, "/hubs/chat?access_token="))).toBe("unauthorized");
  });
});

describe("required: false", () => {
  const authenticate = jwtAuthentication({ secret, required: false });

  it("lets a request without a token in anonymously", async () => {
    expect(await authenticate(request())).toBeUndefined();
  });

  it("still refuses an invalid token, and an empty or malformed bearer header", async () => {
    expect(await authenticate(withBearer(await sign({ sub: "alice" }, otherSecret)))).toBe("unauthorized");
    expect(await authenticate(request({ authorization: "Bearer" }))).toBe("unauthorized");
    expect(await authenticate(request({ authorization: "Bearer a b" }))).toBe("unauthorized");
  });

  it("still identifies a request with a valid token", async () => {
    expect(await authenticate(withBearer(await sign({ sub: "alice" }, secret)))).toMatchObject({
      userId: "alice",
    });
  });
});

describe("option errors", () => {
  const { publicKey: rsaPublic, privateKey: rsaPrivate } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
  });
  const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
  const secp256k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey;
  const x25519 = generateKeyPairSync("x25519").publicKey;
  const pem = rsaPublic.export({ type: "spki", format: "pem" }) as string;
  const privatePem = rsaPrivate.export({ type: "pkcs8", format: "pem" }) as string;

  const cases: [string, unknown, string][] = [
    ["no options", undefined, "jwtAuthentication: the options must be an object."],
    ["no key source", {}, "jwtAuthentication: give a key source: option 'secret', 'publicKey' or 'jwksUrl'."],
    [
      "two key sources",
      { secret, publicKey: pem },
      "jwtAuthentication: give one key source, not 'secret' and 'publicKey'.",
    ],
    [
      "three key sources",
      { secret, publicKey: pem, jwksUrl: "https://x.example/jwks" },
      "jwtAuthentication: give one key source, not 'secret' and 'publicKey' and 'jwksUrl'.",
    ],
    ["an unknown option", { secret, audiance: "chat" }, "jwtAuthentication: unknown option 'audiance'."],
    ["an empty secret", { secret: "" }, "jwtAuthentication: option 'secret' must not be empty."],
    [
      "an empty secret (bytes)",
      { secret: new Uint8Array() },
      "jwtAuthentication: option 'secret' must not be empty.",
    ],
    [
      "a short secret",
      { secret: "short" },
      "jwtAuthentication: option 'secret' must be at least 32 bytes (256 bits) long.",
    ],
    [
      "a secret of the wrong type",
      { secret: 42 },
      "jwtAuthentication: option 'secret' must be a string or a Uint8Array.",
    ],
    [
      "a jwksUrl that is not a URL",
      { jwksUrl: "jwks.json" },
      "jwtAuthentication: option 'jwksUrl' must be an absolute http or https URL.",
    ],
    [
      "a jwksUrl that is not http",
      { jwksUrl: "file:///etc/jwks.json" },
      "jwtAuthentication: option 'jwksUrl' must be an absolute http or https URL.",
    ],
    [
      "a publicKey that is not PEM",
      { publicKey: "not a key" },
      "jwtAuthentication: option 'publicKey' is not a PEM public key or X.509 certificate.",
    ],
    [
      "a private key PEM",
      { publicKey: privatePem },
      "jwtAuthentication: option 'publicKey' holds a private key: give the public key (or certificate) instead.",
    ],
    [
      "a private KeyObject",
      { publicKey: rsaPrivate },
      "jwtAuthentication: option 'publicKey' must be a public key, not a private KeyObject.",
    ],
    [
      "a publicKey of the wrong type",
      { publicKey: 7 },
      "jwtAuthentication: option 'publicKey' must be a PEM string, a KeyObject or a CryptoKey.",
    ],
    [
      "a small RSA key",
      { publicKey: small },
      "jwtAuthentication: option 'publicKey' is a 1024-bit RSA key; RSA keys need 2048 bits or more.",
    ],
    [
      "an unsupported curve",
      { publicKey: secp256k1 },
      "jwtAuthentication: option 'publicKey' uses the curve 'secp256k1'; use P-256, P-384 or P-521.",
    ],
    [
      "a key that cannot sign",
      { publicKey: x25519 },
      "jwtAuthentication: option 'publicKey' is a key of type 'x25519'; use an RSA, EC (P-256, P-384, P-521) or Ed25519 key.",
    ],
    [
      "none in algorithms",
      { secret, algorithms: ["HS256", "none"] },
      "jwtAuthentication: option 'algorithms' must not contain 'none': unsigned tokens are never accepted.",
    ],
    [
      "None in algorithms, any case",
      { jwksUrl: "https://x.example/jwks", algorithms: ["NONE"] },
      "jwtAuthentication: option 'algorithms' must not contain 'none': unsigned tokens are never accepted.",
    ],
    [
      "an empty algorithms list",
      { secret, algorithms: [] },
      "jwtAuthentication: option 'algorithms' must be a non-empty list of algorithm names such as \"RS256\".",
    ],
    [
      "an asymmetric algorithm with a secret",
      { secret, algorithms: ["RS256"] },
      "jwtAuthentication: option 'algorithms': 'RS256' cannot be used with option 'secret' (it fits HS256, HS384, HS512).",
    ],
    [
      "an HMAC algorithm with a public key",
      { publicKey: pem, algorithms: ["HS256"] },
      "jwtAuthentication: option 'algorithms': 'HS256' cannot be used with option 'publicKey' (it fits RS256, RS384, RS512, PS256, PS384, PS512).",
    ],
    [
      "an HMAC algorithm with a JWKS",
      { jwksUrl: "https://x.example/jwks", algorithms: ["HS256"] },
      "jwtAuthentication: option 'algorithms': 'HS256' cannot be used with option 'jwksUrl' (it fits RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519).",
    ],
    [
      "an empty issuer",
      { secret, issuer: "" },
      "jwtAuthentication: option 'issuer' must be a non-empty string or a list of them.",
    ],
    [
      "an audience list with a number",
      { secret, audience: ["chat", 3] },
      "jwtAuthentication: option 'audience' must be a non-empty string or a list of them.",
    ],
    [
      "an empty userIdClaim",
      { secret, userIdClaim: "" },
      "jwtAuthentication: option 'userIdClaim' must be a claim name or a dotted path such as \"user.id\".",
    ],
    [
      "a userIdClaim with an empty segment",
      { secret, userIdClaim: "user..id" },
      "jwtAuthentication: option 'userIdClaim' must be a claim name or a dotted path such as \"user.id\".",
    ],
    [
      "a non-boolean required",
      { secret, required: "no" },
      "jwtAuthentication: option 'required' must be true or false.",
    ],
    [
      "a non-boolean requireExpiration",
      { secret, requireExpiration: 1 },
      "jwtAuthentication: option 'requireExpiration' must be true or false.",
    ],
    [
      "a negative clockToleranceSec",
      { secret, clockToleranceSec: -1 },
      "jwtAuthentication: option 'clockToleranceSec' must be a number of seconds, 0 or more.",
    ],
  ];

  it.each(cases)("names the option for %s", (_name, options, message) => {
    expect(errorOf(() => jwtAuthentication(options as JwtAuthenticationOptions))).toBe(message);
  });

  it("refuses a private CryptoKey and one without the verify usage", async () => {
    const pair = await generateKeyPair("ES256");
    expect(errorOf(() => jwtAuthentication({ publicKey: pair.privateKey }))).toBe(
      "jwtAuthentication: option 'publicKey' must be a public key, not a private CryptoKey.",
    );
    const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
    const unusable = await crypto.subtle.importKey(
      "spki",
      spki,
      { name: "ECDSA", namedCurve: "P-256" },
      true,
      [],
    );
    expect(errorOf(() => jwtAuthentication({ publicKey: unusable }))).toBe(
      "jwtAuthentication: option 'publicKey' is a CryptoKey without the \"verify\" usage.",
    );
  });

  it("never puts the secret in an error", () => {
    const message = errorOf(() => jwtAuthentication({ secret: "too-short-secret", algorithms: ["RS256"] }));
    expect(message).not.toContain("too-short-secret");
  });
});
