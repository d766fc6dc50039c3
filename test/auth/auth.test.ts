// Bearer-JWT authentication end to end: real servers, the official client on every transport, 401s for
// missing, expired, forged and never-expiring tokens, the browser's access_token query parameter on a raw
// WebSocket, connections closed when their token expires (and the client back with a fresh one), hub and
// method authorization rules with the .NET refusal text, the notification hub refusing a user who
// registers someone else's identifier, and no token ever written to the logs.
import { HttpTransportType } from "@microsoft/signalr";
import { SignJWT } from "jose";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hub, type AuthorizationRule, type HubAuthorization } from "../../src/index.js";
import { jwtAuthentication } from "../../src/server/auth.js";
import { connectClient, type TestClient, type TransportKey } from "../support/hub-client.js";
import { openRaw, records } from "../support/raw-client.js";
import { startServer, type RunningServer } from "../support/test-server.js";

const secret = "integration-secret-of-at-least-32-bytes";
const whoPath = "/hubs/who";
const notificationsPath = "/hubs/notifications";
const adminPath = "/hubs/admin";
const transports: TransportKey[] = ["WebSockets", "ServerSentEvents", "LongPolling"];

const isAdmin: AuthorizationRule = (user) => user.claims?.role === "admin";

class WhoHub extends Hub {
  static authorize: HubAuthorization = { methods: { adminSecret: isAdmin, adminCountdown: isAdmin } };

  whoAmI(): { userId: string | undefined; name: unknown } {
    return { userId: this.context.userId, name: this.context.auth?.name };
  }
  adminSecret(): string {
    return "the secret";
  }
  async *adminCountdown(): AsyncGenerator<number> {
    yield* [3, 2, 1];
  }
}

class AdminHub extends Hub {
  static authorize: HubAuthorization = { connect: isAdmin };
  ping(): string {
    return "pong";
  }
}

/** Every token this file made, to look for in the logs. */
const issued = new Set<string>();
const nowSec = () => Math.floor(Date.now() / 1000);

async function token(
  sub: string,
  options: { key?: string; expiresAt?: number; claims?: Record<string, unknown> } = {},
): Promise<string> {
  const jwt = await new SignJWT({ sub, name: `${sub} (from the token)`, ...options.claims })
    .setProtectedHeader({ alg: "HS256" })
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? "5m")
    .sign(new TextEncoder().encode(options.key ?? secret));
  issued.add(jwt);
  return jwt;
}

/** Every line the server logged, at debug level. */
const logLines: string[] = [];
const capturingLogger = pino({ level: "debug" }, { write: (line: string) => void logLines.push(line) });

let running: RunningServer;
const clients: TestClient[] = [];

async function client(
  path: string,
  accessToken: string | undefined,
  transport: TransportKey = "WebSockets",
  methods: string[] = [],
): Promise<TestClient> {
  const http = accessToken === undefined ? {} : { accessTokenFactory: () => accessToken };
  const c = await connectClient(running.url(path), methods, { transport, http });
  clients.push(c);
  return c;
}

/** The error start() rejected with. */
async function startError(accessToken: string | undefined, path = whoPath): Promise<Error> {
  return client(path, accessToken).then(
    () => {
      throw new Error("expected start() to fail");
    },
    (error: unknown) => error as Error,
  );
}

beforeAll(async () => {
  running = await startServer({
    hubs: { [whoPath]: WhoHub, [adminPath]: AdminHub },
    notifications: true,
    authenticate: jwtAuthentication({ secret }),
    logger: capturingLogger,
  });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.stop()));
  await running.close();
});

describe("a client with a valid token", () => {
  it.each(transports)("connects over %s and the hub sees the sub as its user id", async (transport) => {
    const alice = await client(whoPath, await token("alice"), transport);
    expect(await alice.connection.invoke("whoAmI")).toEqual({
      userId: "alice",
      name: "alice (from the token)",
    });
  });

  it("connects without negotiating (skipNegotiation over WebSockets)", async () => {
    const accessToken = await token("alice");
    const c = await connectClient(running.url(whoPath), [], {
      http: {
        skipNegotiation: true,
        transport: HttpTransportType.WebSockets,
        accessTokenFactory: () => accessToken,
      },
    });
    clients.push(c);
    expect(await c.connection.invoke("whoAmI")).toMatchObject({ userId: "alice" });
  });

  it("connects over a raw WebSocket with the token in the access_token query parameter, as browsers do", async () => {
    const accessToken = await token("alice");
    const raw = await openRaw(running.baseUrl, `${whoPath}?access_token=${encodeURIComponent(accessToken)}`);
    try {
      raw.send('{"type":1,"invocationId":"1","target":"whoAmI","arguments":[]}\u001e');
      const reply = await raw.nextFrame((frame) => records(frame).some((r) => r.type === 3));
      expect(records(reply)).toContainEqual({
        type: 3,
        invocationId: "1",
        result: { userId: "alice", name: "alice (from the token)" },
      });
    } finally {
      raw.close();
    }
  });

  it("gets a negotiate response from a raw fetch with the Authorization header", async () => {
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), {
      method: "POST",
      headers: { Authorization: `Bearer ${await token("alice")}` },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ negotiateVersion: 1 });
  });
});

describe("a client without a valid token", () => {
  it("fails to start without a token: negotiate answers 401", async () => {
    const error = await startError(undefined);
    expect(error.message).toContain("Status code '401'");
    expect(error.message).toBe(
      "Failed to complete negotiation with the server: Error: Unauthorized: Status code '401'",
    );
  });

  it("gets 401 from a raw negotiate POST without a token", async () => {
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), { method: "POST" });
    expect(response.status).toBe(401);
  });

  it("fails to start with an expired token", async () => {
    const expired = await token("alice", { expiresAt: nowSec() - 60 });
    expect((await startError(expired)).message).toContain("Status code '401'");
  });

  it("fails to start with a token signed by another key", async () => {
    const forged = await token("alice", { key: "an-attackers-secret-of-32-bytes-or-more" });
    expect((await startError(forged)).message).toContain("Status code '401'");
    const response = await fetch(running.url(`${whoPath}/negotiate?negotiateVersion=1`), {
      method: "POST",
      headers: { Authorization: `Bearer ${forged}` },
    });
    expect(response.status).toBe(401);
  });

  it("gets 401 on a raw WebSocket upgrade without a token, or with a forged one in the query", async () => {
    await expect(openRaw(running.baseUrl, whoPath)).rejects.toThrow("Unexpected server response: 401");
    const forged = await token("alice", { key: "an-attackers-secret-of-32-bytes-or-more" });
    await expect(openRaw(running.baseUrl, `${whoPath}?access_token=${forged}`)).rejects.toThrow(
      "Unexpected server response: 401",
    );
  });
});

describe("a token without exp", () => {
  it("is refused (requireExpiration is on by default)", async () => {
    const forever = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode(secret));
    issued.add(forever);
    expect((await startError(forever)).message).toContain("Status code '401'");
  });
});

describe("a token that expires while connected", () => {
  it.each(transports)(
    "closes its connection over %s with a reason the client sees; the client comes back with a fresh token",
    async (transport) => {
      let current = await token("alice", { expiresAt: nowSec() + 2 });
      const c = await connectClient(running.url(whoPath), [], {
        transport,
        reconnectDelays: [0, 100, 500],
        http: { accessTokenFactory: () => current },
      });
      clients.push(c);
      current = await token("alice"); // what the app's token endpoint would hand out next
      const reconnecting = new Promise<Error | undefined>((resolve) => c.connection.onreconnecting(resolve));
      const reconnected = new Promise<void>((resolve) => c.connection.onreconnected(() => resolve()));

      const reason = await reconnecting;
      expect(reason?.message).toBe(
        "Server returned an error on close: Connection closed with an error. The connection's authentication expired.",
      );
      await reconnected;
      expect(await c.connection.invoke("whoAmI")).toMatchObject({ userId: "alice" });
    },
  );

  it("stays open with closeOnAuthenticationExpiration: false", async () => {
    const lenient = await startServer({
      hubs: { [whoPath]: WhoHub },
      authenticate: jwtAuthentication({ secret }),
      closeOnAuthenticationExpiration: false,
    });
    try {
      const expiresAt = nowSec() + 1;
      const c = await connectClient(lenient.url(whoPath), [], {
        http: { accessTokenFactory: () => token("alice", { expiresAt }) },
      });
      clients.push(c);
      // Past the expiry and two of the server's one-second checks: the connection still answers.
      await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 - Date.now() + 2100));
      expect(await c.connection.invoke("whoAmI")).toMatchObject({ userId: "alice" });
      expect(c.connection.state).toBe("Connected");
    } finally {
      await lenient.close();
    }
  });
});

describe("authorization rules", () => {
  it("refuses a hub's connect rule with 403 on negotiate and on a raw upgrade; admits who passes", async () => {
    const alice = await token("alice");
    expect((await startError(alice, adminPath)).message).toBe(
      "Failed to complete negotiation with the server: Error: Forbidden: Status code '403'",
    );
    await expect(openRaw(running.baseUrl, `${adminPath}?access_token=${alice}`)).rejects.toThrow(
      "Unexpected server response: 403",
    );
    const admin = await client(adminPath, await token("root", { claims: { role: "admin" } }));
    expect(await admin.connection.invoke("ping")).toBe("pong");
  });

  it.each(transports)(
    "refuses a method's rule over %s with the .NET text, and the connection goes on",
    async (transport) => {
      const alice = await client(whoPath, await token("alice"), transport);
      await expect(alice.connection.invoke("adminSecret")).rejects.toThrow(
        "Failed to invoke 'adminSecret' because user is unauthorized",
      );
      await expect(drain(alice.connection.stream("adminCountdown"))).rejects.toThrow(
        "Failed to invoke 'adminCountdown' because user is unauthorized",
      );
      expect(await alice.connection.invoke("whoAmI")).toMatchObject({ userId: "alice" });

      const root = await client(whoPath, await token("root", { claims: { role: "admin" } }), transport);
      expect(await root.connection.invoke("adminSecret")).toBe("the secret");
      expect(await drain(root.connection.stream("adminCountdown"))).toEqual([3, 2, 1]);
    },
  );
});

/** The items of a server stream, or its error. */
function drain<T>(stream: {
  subscribe(s: { next(v: T): void; error(e: unknown): void; complete(): void }): unknown;
}) {
  return new Promise<T[]>((resolve, reject) => {
    const items: T[] = [];
    stream.subscribe({ next: (v) => items.push(v), error: reject, complete: () => resolve(items) });
  });
}

describe("the notification hub with JWT users", () => {
  it("refuses mallory registering alice, and notifies alice who registers herself", async () => {
    const mallory = await client(notificationsPath, await token("mallory"), "WebSockets", ["addMessage"]);
    await expect(mallory.connection.invoke("register", "alice")).rejects.toThrow(
      "This connection may not register identifier 'alice'.",
    );

    const alice = await client(notificationsPath, await token("alice"), "WebSockets", ["addMessage"]);
    expect(await alice.connection.invoke("register", "alice")).toMatchObject({ identifier: "alice" });
    const result = await running.server.notifications!.notify("alice", { status: "Confirmed" });
    expect(result.connections).toBe(1);
    expect(await alice.next("addMessage", 1)).toEqual(["Your request has been confirmed."]);
    expect(mallory.received("addMessage")).toEqual([]);
  });
});

describe("the logs", () => {
  // Runs last in this file: every token above has passed through the server by now.
  it("never hold a token, whatever was refused, expired or allowed", () => {
    expect(issued.size).toBeGreaterThan(10);
    expect(logLines.length).toBeGreaterThan(10);
    const all = logLines.join("");
    for (const jwt of issued) {
      expect(all.includes(jwt)).toBe(false);
      expect(all.includes(jwt.split(".")[2]!)).toBe(false); // not even the signature alone
    }
  });
});
