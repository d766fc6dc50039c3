import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { connectionRequest, publicQuery } from "./http-utils.js";

function fakeRequest(headers: Record<string, string>, remoteAddress = "10.0.0.7"): IncomingMessage {
  return { headers: { ...headers }, socket: { remoteAddress } } as unknown as IncomingMessage;
}

describe("connectionRequest", () => {
  it("keeps every header value as sent, shared or not", () => {
    const headers = {
      host: "example.com",
      "user-agent": "Mozilla/5.0",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "x-custom": "mine",
    };
    for (let i = 0; i < 3; i++) {
      const request = connectionRequest(
        fakeRequest(headers),
        "/hub",
        new URLSearchParams(),
        { userId: "u" },
        false,
      );
      expect(request.headers).toEqual(headers);
    }
  });

  it("reads the remote address from the socket, at once or when asked", () => {
    for (const socketIsConnection of [false, true]) {
      const req = fakeRequest({});
      const request = connectionRequest(req, "/hub", new URLSearchParams(), {}, socketIsConnection);
      expect(request.remoteAddress).toBe("10.0.0.7");
      expect(request).toMatchObject({ path: "/hub", userId: undefined, auth: undefined });
    }
  });
});

describe("publicQuery", () => {
  it("drops the connection token and access token and keeps the last value of each name", () => {
    const query = publicQuery(new URLSearchParams("id=secret&a=1&access_token=t&a=2&b=3"));
    expect([...query]).toEqual([
      ["a", "2"],
      ["b", "3"],
    ]);
  });
});
