// The server API's failures over real HTTP: keys, malformed requests, limits, and a backplane that fails.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackplaneUnavailableError } from "../../src/backplane/backplane.js";
import { createApiHandler, hashApiKey } from "../../src/api/index.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { call, recordingLogger, serveApi, testKey, type ApiServer } from "./support.js";

const hubPath = "/hubs/notifications";
let node: RunningServer;
let api: ApiServer;
const log = recordingLogger();
const servers: ApiServer[] = [];

/** Another API server over the same node, with some options changed. */
async function variant(options: Partial<Parameters<typeof createApiHandler>[0]>): Promise<ApiServer> {
  const server = await serveApi({
    notifier: node.server.notifications!,
    backplane: node.server.backplane,
    hubs: [hubPath],
    apiKeyHashes: [hashApiKey(testKey)],
    logger: silentLogger,
    ...options,
  });
  servers.push(server);
  return server;
}

beforeAll(async () => {
  node = await startServer({ hubs: {}, notifications: { allowAnonymousRegistration: true } });
  api = await serveApi({
    notifier: node.server.notifications!,
    backplane: node.server.backplane,
    hubs: [hubPath],
    apiKeyHashes: [hashApiKey(testKey)],
    logger: log,
  });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await api?.close();
  await node?.close();
});

describe("API keys", () => {
  it("answers 401 unauthorized with WWW-Authenticate: Bearer without a key", async () => {
    const reply = await call(api.url("/api/nodes"), { key: null });
    expect(reply.status).toBe(401);
    expect(reply.headers.get("www-authenticate")).toBe("Bearer");
    expect(reply.body).toEqual({ code: "unauthorized", error: expect.stringContaining("X-API-Key") });
  });

  it("answers 401 unauthorized for a wrong key, and never logs the key", async () => {
    const reply = await call(api.url("/api/nodes"), { key: "wrong-key-1234" });
    expect(reply.status).toBe(401);
    expect(reply.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
    expect(reply.body).toMatchObject({ code: "unauthorized" });
    expect(log.entries.some((e) => e.fields.event === "ApiUnauthorized")).toBe(true);
    const logged = JSON.stringify(log.entries);
    expect(logged).not.toContain("wrong-key-1234");
    expect(logged).not.toContain(testKey);
  });

  it("accepts the key as a bearer token or in X-API-Key", async () => {
    expect((await call(api.url("/api/nodes"))).status).toBe(200);
    const viaHeader = await call(api.url("/api/nodes"), { key: null, headers: { "x-api-key": testKey } });
    expect(viaHeader.status).toBe(200);
  });

  it("answers 404 api_disabled for every route but the OpenAPI document when no key is configured", async () => {
    const disabled = await variant({ apiKeyHashes: [] });
    for (const path of ["/api/nodes", "/api/presence/x", "/api/no-such-route"]) {
      const reply = await call(disabled.url(path));
      expect(reply).toMatchObject({ status: 404, body: { code: "api_disabled" } });
    }
    expect((await call(disabled.url("/api/openapi.json"), { key: null })).status).toBe(200);
  });

  it("accepts requests without a key in demo mode, but still refuses a wrong one", async () => {
    const demo = await variant({ allowWithoutKey: true });
    expect((await call(demo.url("/api/nodes"), { key: null })).status).toBe(200);
    expect((await call(demo.url("/api/nodes"), { key: "wrong" })).status).toBe(401);
    const open = await variant({ allowWithoutKey: true, apiKeyHashes: [] });
    expect((await call(open.url("/api/nodes"), { key: null })).status).toBe(200);
  });

  it("hashApiKey is the hex SHA-256, and bad configured hashes are refused at creation", () => {
    expect(hashApiKey("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const options = { backplane: node.server.backplane, hubs: [], logger: silentLogger };
    expect(() => createApiHandler({ ...options, apiKeyHashes: ["not-a-hash"] })).toThrow(
      /apiKeyHashes\[0\].*64 hex digits/,
    );
  });
});

describe("routing", () => {
  it("declines URLs outside /api/ so the caller can fall through", async () => {
    for (const path of ["/", "/hubs/notifications", "/apix", "/api-docs"]) {
      const response = await fetch(api.url(path));
      expect(response.status).toBe(418);
      expect(await response.text()).toBe("not the API");
    }
  });

  it("answers 404 not_found for an unknown path under /api", async () => {
    for (const path of ["/api", "/api/", "/api/nope", "/api/nodes/extra", "/api/users/alice/extra"]) {
      expect(await call(api.url(path))).toMatchObject({ status: 404, body: { code: "not_found" } });
    }
    // The answer lists every route, not just the document that describes them.
    const { body } = await call(api.url("/api/nope"));
    for (const route of ["POST /api/notifications/{identifier}", "POST /api/broadcast", "GET /api/nodes"]) {
      expect((body as { error: string }).error).toContain(route);
    }
  });

  it("answers 405 method_not_allowed with Allow for a known path and another method", async () => {
    const get = await call(api.url("/api/broadcast"));
    expect(get).toMatchObject({ status: 405, body: { code: "method_not_allowed" } });
    expect(get.headers.get("allow")).toBe("POST");
    const del = await call(api.url("/api/nodes"), { method: "DELETE" });
    expect(del.status).toBe(405);
    expect(del.headers.get("allow")).toBe("GET");
  });
});

describe("path parameters", () => {
  const invalid = [
    ["empty", "/api/presence/", /identifier: must not be empty/],
    ["too long", `/api/presence/${"x".repeat(257)}`, /identifier: must be at most 256/],
    ["a control character", "/api/presence/a%00b", /identifier: must not contain control characters/],
    ["bad percent-encoding", "/api/presence/%E0%A4%A", /identifier: is not valid percent-encoding/],
    ["a bad user id", "/api/users/a%0Ab/messages", /userId: must not contain control characters/],
  ] as const;
  it.each(invalid)("answers 400 invalid_request for %s", async (_, path, message) => {
    const reply = await call(api.url(path), {
      method: path.endsWith("/messages") ? "POST" : "GET",
      json: path.endsWith("/messages") ? { method: "m" } : undefined,
    });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ code: "invalid_request", error: expect.stringMatching(message) });
  });

  it("accepts exactly 256 characters", async () => {
    expect((await call(api.url(`/api/presence/${"x".repeat(256)}`))).status).toBe(200);
  });
});

describe("request bodies", () => {
  const notify = (init: Parameters<typeof call>[1]) => call(api.url("/api/notifications/someone"), init);

  it("answers 400 invalid_json for a body that is not JSON, or not UTF-8", async () => {
    const reply = await notify({ raw: '{"status": ', headers: { "content-type": "application/json" } });
    expect(reply).toMatchObject({ status: 400, body: { code: "invalid_json" } });
    const empty = await notify({ raw: "", headers: { "content-type": "application/json" } });
    expect(empty).toMatchObject({ status: 400, body: { code: "invalid_json" } });
    const latin1 = await notify({
      raw: new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x7d]),
      headers: { "content-type": "application/json" },
    });
    expect(latin1).toMatchObject({ status: 400, body: { code: "invalid_json" } });
  });

  const invalid = [
    ["an unknown field", { status: "Confirmed", colour: "red" }, /body: Unrecognized key: "colour"/],
    ["both status and message", { status: "Confirmed", message: "x" }, /exactly one of 'status'/],
    ["neither status nor message", { ifOffline: "store" }, /exactly one of 'status'/],
    ["a bad ifOffline", { message: "x", ifOffline: "later" }, /body.ifOffline: must be "error" or "store"/],
    ["an empty message", { message: "" }, /body.message: must not be empty/],
    ["a number for a status", { status: 7 }, /body.status: must be a string/],
    ["an array", ["Confirmed"], /body: /],
  ] as const;
  it.each(invalid)("answers 400 invalid_request for %s, naming the field", async (_, json, message) => {
    const reply = await notify({ json });
    expect(reply.status).toBe(400);
    expect(reply.body).toEqual({ code: "invalid_request", error: expect.stringMatching(message) });
  });

  it("names the field of a bad message body", async () => {
    const missing = await call(api.url("/api/broadcast"), { json: { arguments: [] } });
    expect(missing.body).toEqual({
      code: "invalid_request",
      error: expect.stringMatching(/body.method: is required/),
    });
    const notArray = await call(api.url("/api/broadcast"), { json: { method: "m", arguments: "x" } });
    expect(notArray.body).toMatchObject({ error: expect.stringMatching(/body.arguments: must be an array/) });
    const badHub = await call(api.url("/api/broadcast"), { json: { method: "m", hub: "hubs/x" } });
    expect(badHub.body).toMatchObject({ error: expect.stringMatching(/body.hub: must be a hub path/) });
  });

  it("answers 400 for arguments nested deeper than 64 levels, and takes 64", async () => {
    const nested = (levels: number) => {
      let value: unknown = "core";
      for (let i = 0; i < levels; i++) value = [value];
      return value;
    };
    // The arguments array is the first level.
    const deep = await call(api.url("/api/broadcast"), { json: { method: "m", arguments: [nested(100)] } });
    expect(deep.status).toBe(400);
    expect(deep.body).toEqual({
      code: "invalid_request",
      error: "Invalid request: body.arguments: must not nest more than 64 levels deep.",
    });
    const fits = await call(api.url("/api/broadcast"), { json: { method: "m", arguments: [nested(63)] } });
    expect(fits.status).toBe(202);
  });

  it("answers 415 unsupported_media_type for a POST that is not application/json", async () => {
    const plain = await notify({ raw: '{"status":"Confirmed"}' }); // fetch labels it text/plain
    expect(plain).toMatchObject({ status: 415, body: { code: "unsupported_media_type" } });
    const none = await notify({ method: "POST" });
    expect(none).toMatchObject({ status: 415, body: { code: "unsupported_media_type" } });
    const latin1 = await notify({
      raw: '{"message":"x"}',
      headers: { "content-type": "application/json; charset=iso-8859-1" },
    });
    expect(latin1.status).toBe(415);
  });

  it("accepts application/json with charset=utf-8", async () => {
    const reply = await notify({
      raw: '{"message":"x"}',
      headers: { "content-type": "Application/JSON; charset=UTF-8" },
    });
    expect(reply).toMatchObject({ status: 404, body: { code: "not_connected" } });
  });

  it("answers 413 payload_too_large for a body over 64 KiB", async () => {
    const reply = await notify({ json: { message: "x".repeat(64 * 1024) } });
    expect(reply).toMatchObject({ status: 413, body: { code: "payload_too_large" } });
    expect(reply.body).toMatchObject({ error: expect.stringContaining("65536 bytes") });
  });

  it("lets a client that is still uploading 10 MB read its 413, instead of a reset", async () => {
    const body = Buffer.alloc(10 * 1024 * 1024, "x");
    // Resolves once the exchange is over: the status, and any error the client saw (before or after it).
    const upload = () =>
      new Promise<{ status: number; error?: string }>((resolve) => {
        let status = 0;
        let error: string | undefined;
        const req = request(
          api.url("/api/notifications/someone"),
          {
            method: "POST",
            headers: {
              authorization: `Bearer ${testKey}`,
              "content-type": "application/json",
              "content-length": body.length,
            },
          },
          (res) => {
            status = res.statusCode ?? 0;
            res.resume();
          },
        );
        req.on("error", (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message)); // ECONNRESET, EPIPE
        req.on("close", () => resolve(error === undefined ? { status } : { status, error }));
        // In 64 KiB pieces, as a client on a real network would send it.
        for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
        req.end();
      });
    for (let i = 0; i < 5; i++) expect(await upload()).toEqual({ status: 413 });
  });

  it("answers 413 for a streamed body without Content-Length once it passes the limit", async () => {
    const small = await variant({ maxBodyBytes: 100 });
    const chunk = new TextEncoder().encode(JSON.stringify({ message: "y".repeat(200) }));
    const response = await fetch(small.url("/api/notifications/someone"), {
      method: "POST",
      headers: { authorization: `Bearer ${testKey}`, "content-type": "application/json" },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(chunk);
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
    expect(await response.json()).toMatchObject({ code: "payload_too_large" });
  });
});

describe("failures behind the API", () => {
  it("answers 503 backplane_unavailable when the backplane refuses a publish", async () => {
    const broken = await variant({
      notifier: undefined,
      backplane: {
        publish: () => Promise.reject(new BackplaneUnavailableError("database unreachable at 10.0.0.7")),
        nodes: () => Promise.resolve([]),
        userConnections: () => Promise.resolve([]),
        groupMembers: () => Promise.resolve([]),
        onlineUsers: () => Promise.resolve([]),
        connection: () => Promise.resolve(undefined),
        hubCounts: () => Promise.resolve([]),
      },
    });
    const reply = await call(broken.url("/api/broadcast"), { json: { method: "m", hub: hubPath } });
    expect(reply).toMatchObject({ status: 503, body: { code: "backplane_unavailable" } });
    expect(JSON.stringify(reply.body)).not.toContain("10.0.0.7");
  });

  it("answers 500 internal_error without detail, and logs the failure", async () => {
    const logger = recordingLogger();
    const broken = await variant({
      logger,
      backplane: {
        publish: () => Promise.reject(new Error("x")),
        nodes: () => Promise.reject(new Error("secret detail")),
        userConnections: () => Promise.resolve([]),
        groupMembers: () => Promise.resolve([]),
        onlineUsers: () => Promise.resolve([]),
        connection: () => Promise.resolve(undefined),
        hubCounts: () => Promise.resolve([]),
      },
    });
    const reply = await call(broken.url("/api/nodes"));
    expect(reply).toMatchObject({ status: 500, body: { code: "internal_error" } });
    expect(JSON.stringify(reply.body)).not.toContain("secret detail");
    const failure = logger.entries.find((e) => e.fields.event === "ApiRequestFailed");
    expect(failure).toMatchObject({ level: "error", fields: { route: "/api/nodes", method: "GET" } });
    expect((failure!.fields.err as Error).message).toBe("secret detail");
  });

  it("without a notifier: notification routes are 404 notifications_disabled and messages need a hub", async () => {
    const bare = await variant({ notifier: undefined });
    const notify = await call(bare.url("/api/notifications/x"), { json: { status: "Confirmed" } });
    expect(notify).toMatchObject({ status: 404, body: { code: "notifications_disabled" } });
    const presence = await call(bare.url("/api/presence/x"));
    expect(presence).toMatchObject({ status: 404, body: { code: "notifications_disabled" } });
    const noHub = await call(bare.url("/api/broadcast"), { json: { method: "m" } });
    expect(noHub).toMatchObject({ status: 400, body: { code: "invalid_request" } });
    expect(noHub.body).toMatchObject({ error: expect.stringMatching(/body.hub: is required/) });
    const withHub = await call(bare.url("/api/broadcast"), { json: { method: "m", hub: hubPath } });
    expect(withHub).toMatchObject({ status: 202 });
  });
});
