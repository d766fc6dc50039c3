import { afterEach, describe, expect, it } from "vitest";
import { parseNegotiateVersion, type NegotiateResponse } from "./negotiate.js";
import { RecordingHandler, startEndpoint, type EndpointHarness } from "./test-support.js";

describe("parseNegotiateVersion", () => {
  it("reads a missing version as 0 and clamps versions above 1", () => {
    expect(parseNegotiateVersion(undefined)).toEqual({ version: 0 });
    expect(parseNegotiateVersion("0")).toEqual({ version: 0 });
    expect(parseNegotiateVersion("1")).toEqual({ version: 1 });
    expect(parseNegotiateVersion(" +7 ")).toEqual({ version: 1 });
  });

  it("refuses non-integers and negative versions with .NET's texts", () => {
    const nonInteger = { error: "The client requested a non-integer protocol version." };
    for (const raw of ["", "1.5", "one", "1e3", "99999999999"])
      expect(parseNegotiateVersion(raw)).toEqual(nonInteger);
    expect(parseNegotiateVersion("-1")).toEqual({
      error: "The client requested version '-1', but the server does not support this version.",
    });
  });
});

describe("POST {path}/negotiate", () => {
  let harness: EndpointHarness;
  afterEach(() => harness.close());

  const negotiate = (query = "", init: RequestInit = { method: "POST" }) =>
    fetch(`${harness.url}/negotiate${query}`, init);
  const json = async (res: Response) => (await res.json()) as NegotiateResponse & { error?: string };

  it("version 1 answers a connection id, a separate token and the transports in order", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler() });
    const res = await negotiate("?negotiateVersion=1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(Number(res.headers.get("content-length"))).toBeGreaterThan(0);
    const body = await json(res);
    expect(Object.keys(body)).toEqual([
      "negotiateVersion",
      "connectionId",
      "connectionToken",
      "availableTransports",
    ]);
    expect(body.negotiateVersion).toBe(1);
    expect(body.connectionId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.connectionToken).not.toBe(body.connectionId);
    expect(body.availableTransports).toEqual([
      { transport: "WebSockets", transferFormats: ["Text", "Binary"] },
      { transport: "ServerSentEvents", transferFormats: ["Text"] },
      { transport: "LongPolling", transferFormats: ["Text", "Binary"] },
    ]);
  });

  it("version 0 (or none) answers no token, and a later version is clamped to 1", async () => {
    harness = await startEndpoint({
      handler: new RecordingHandler(),
      transports: ["LongPolling", "WebSockets"],
    });
    const v0 = await json(await negotiate());
    expect(v0.negotiateVersion).toBe(0);
    expect(v0.connectionToken).toBeUndefined();
    expect(v0.availableTransports.map((t) => t.transport)).toEqual(["LongPolling", "WebSockets"]);
    const v5 = await json(await negotiate("?NegotiateVersion=5"));
    expect(v5.negotiateVersion).toBe(1);
    expect(typeof v5.connectionToken).toBe("string");
  });

  it("a non-integer version gets 200 with an error body", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler() });
    const res = await negotiate("?negotiateVersion=abc");
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ error: "The client requested a non-integer protocol version." });
  });

  it("other verbs get 405 text/plain", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler() });
    const res = await negotiate("", { method: "GET" });
    expect(res.status).toBe(405);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("");
  });

  it("an unauthorized request gets 401 with an empty body", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler(), authenticate: () => "unauthorized" });
    const res = await negotiate("?negotiateVersion=1");
    expect(res.status).toBe(401);
    expect(res.statusText).toBe("Unauthorized");
    expect(await res.text()).toBe("");
  });

  it("a failing authenticate hook gets 500 and the endpoint keeps serving", async () => {
    let calls = 0;
    harness = await startEndpoint({
      handler: new RecordingHandler(),
      authenticate: () => {
        calls += 1;
        if (calls === 1) throw new Error("boom");
        return undefined;
      },
    });
    expect((await negotiate("?negotiateVersion=1")).status).toBe(500);
    expect((await negotiate("?negotiateVersion=1")).status).toBe(200);
  });

  it("a path that is not the endpoint's is left to the server", async () => {
    harness = await startEndpoint({ handler: new RecordingHandler() });
    const res = await fetch(`${harness.origin}/other/negotiate`, { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("not here");
  });
});
