// The OpenAPI document against the router and the real replies: every route documented, every documented
// operation routed, every reference resolvable, and the documented shapes the ones the API sends.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiErrorStatus, apiRoutes, hashApiKey, openApiDocument } from "../../src/api/index.js";
import { silentLogger } from "../../src/log.js";
import { startServer, type RunningServer } from "../support/test-server.js";
import { call, serveApi, testKey, type ApiServer } from "./support.js";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { parameters?: { name: string; in: string }[]; responses: object }>>;
  components: { schemas: Record<string, { required?: string[]; properties?: object }> };
};

const httpMethods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
let node: RunningServer;
let api: ApiServer;
let served: Doc;

beforeAll(async () => {
  node = await startServer({ hubs: {}, notifications: { allowAnonymousRegistration: true } });
  api = await serveApi({
    notifier: node.server.notifications!,
    backplane: node.server.backplane,
    hubs: ["/hubs/notifications"],
    apiKeyHashes: [hashApiKey(testKey)],
    logger: silentLogger,
  });
  const reply = await call(api.url("/api/openapi.json"), { key: null });
  expect(reply.status).toBe(200);
  served = reply.body as Doc;
});
afterAll(async () => {
  await api?.close();
  await node?.close();
});

describe("GET /api/openapi.json", () => {
  it("serves the checked-in OpenAPI 3.1 document without a key", () => {
    expect(served).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    expect(served.openapi).toMatch(/^3\.1\./);
  });

  it("documents every route of the router, with its method", () => {
    for (const route of apiRoutes) {
      expect(served.paths[route.path], route.path).toBeDefined();
      expect(
        served.paths[route.path]![route.method.toLowerCase()],
        `${route.method} ${route.path}`,
      ).toBeDefined();
    }
  });

  it("routes every documented operation", () => {
    const documented = Object.entries(served.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => httpMethods.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    const routed = apiRoutes.map((route) => `${route.method} ${route.path}`);
    expect(documented.sort()).toEqual(routed.sort());
  });

  it("declares each path template parameter, and only those", () => {
    for (const [path, item] of Object.entries(served.paths)) {
      const inTemplate = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      for (const operation of Object.values(item)) {
        const declared = (operation.parameters ?? []).filter((p) => p.in === "path").map((p) => p.name);
        expect(declared.sort(), path).toEqual(inTemplate);
      }
    }
  });

  it("resolves every $ref", () => {
    const refs = [...JSON.stringify(served).matchAll(/"\$ref":"#\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const target = ref
        .split("/")
        .reduce<unknown>((at, key) => (at as Record<string, unknown>)?.[key], served);
      expect(target, ref).toBeDefined();
    }
  });

  it("lists exactly the error codes the API uses", () => {
    const codeEnum = (served.components.schemas.Error!.properties as { code: { enum: string[] } }).code.enum;
    expect([...codeEnum].sort()).toEqual(Object.keys(apiErrorStatus).sort());
  });

  it("documents the status and the fields of what each operation really answers", async () => {
    const samples: [string, string, Promise<{ status: number; body: unknown }>, string][] = [
      [
        "/api/notifications/{identifier}",
        "post",
        call(api.url("/api/notifications/docs"), { json: { message: "m", ifOffline: "store" } }),
        "NotifyResult",
      ],
      ["/api/broadcast", "post", call(api.url("/api/broadcast"), { json: { method: "m" } }), "PublishResult"],
      ["/api/presence/{identifier}", "get", call(api.url("/api/presence/docs")), "Presence"],
      ["/api/nodes", "get", call(api.url("/api/nodes")), "NodeList"],
      ["/api/hubs", "get", call(api.url("/api/hubs")), "HubCounts"],
      ["/api/users", "get", call(api.url("/api/users")), "OnlineUsers"],
      ["/api/notifications", "get", call(api.url("/api/notifications")), "KeptNotifications"],
    ];
    for (const [path, method, pending, schemaName] of samples) {
      const reply = await pending;
      expect(Object.keys(served.paths[path]![method]!.responses), path).toContain(String(reply.status));
      const schema = served.components.schemas[schemaName]!;
      const fields = Object.keys(reply.body as object);
      // Every required field is there, and nothing that is not documented (optional ones may be absent).
      for (const name of schema.required!) expect(fields, schemaName).toContain(name);
      for (const name of fields) expect(Object.keys(schema.properties!), schemaName).toContain(name);
      for (const name of schema.required!)
        expect(Object.keys(schema.properties!), schemaName).toContain(name);
    }
  });
});
