// Client results on one node, through the official client on every transport and protocol: the server
// invokes a client handler and awaits what it returns (ASP.NET Core's Clients.Client(id).InvokeAsync).
import { HttpTransportType, HubConnectionBuilder, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClientResultError, Hub, type HubContext } from "../../src/index.js";
import { connectClient, eventually, transportMatrix, type TestClient } from "../support/hub-client.js";
import { startCutProxy } from "../support/cut-proxy.js";
import { startServer, type RunningServer } from "../support/test-server.js";

/** Hub methods that ask their caller, or another connection, for a result. */
class ResultsHub extends Hub {
  /** Asks the caller and returns what its handler returned (the client awaits a result that awaits it). */
  askCaller(method: string, ...args: unknown[]) {
    return this.clients.caller.invoke(method, ...args);
  }
  /** Asks the caller twice at the same time: both answers come back, each to its own call. */
  async askCallerTwice(method: string, a: unknown, b: unknown) {
    return Promise.all([this.clients.caller.invoke(method, a), this.clients.caller.invoke(method, b)]);
  }
  /** Counts calls, so a test can tell a second invocation ran after the first one's client result. */
  touch() {
    const count = ((this.context.items.get("touched") as number | undefined) ?? 0) + 1;
    this.context.items.set("touched", count);
    return count;
  }
}

let server: RunningServer;
let context: HubContext;

beforeAll(async () => {
  server = await startServer({
    hubs: { "/results": ResultsHub },
    enableDetailedErrors: true,
    // One invocation at a time per client (ASP.NET Core's default, where a hub method awaiting its own
    // caller's result deadlocks): answers are taken as they arrive, so it does not here.
    maximumParallelInvocationsPerClient: 1,
  });
  context = server.server.hubContext("/results");
});
afterAll(() => server.close());

/** The failure a client result ended with. */
async function failure(call: Promise<unknown>): Promise<ClientResultError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ClientResultError);
  return err as ClientResultError;
}

describe.each(transportMatrix)("over $transport with $protocol", ({ transport, protocol }) => {
  let client: TestClient;
  const id = () => client.connection.connectionId!;

  beforeAll(async () => {
    client = await connectClient(server.url("/results"), [], { transport, protocol });
    client.connection.on("add", (a: number, b: number) => a + b);
    client.connection.on("echo", (value: unknown) => value);
    client.connection.on("slowEcho", async (value: unknown, ms: number) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return value;
    });
    client.connection.on("fail", () => {
      throw new Error("from callback");
    });
    client.connection.on("never", () => new Promise(() => {}));
    client.connection.on("nothing", () => undefined);
  });
  afterAll(() => client.stop());

  it("resolves with what the client's handler returned", async () => {
    expect(await context.clients.client(id()).invoke("add", 2, 3)).toBe(5);
    const value = { text: "héllo ✓", list: [1, null, "x"], nested: { flag: true } };
    expect(await context.clients.client(id()).invoke("echo", value)).toEqual(value);
    expect(await context.clients.client(id()).invoke("echo", null)).toBeNull();
  });

  it("awaits an async handler", async () => {
    expect(await context.clients.client(id()).invoke("slowEcho", "late", 50)).toBe("late");
  });

  it("keeps parallel calls apart", async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => context.clients.client(id()).invoke("slowEcho", i, 20 - i)),
    );
    expect(answers).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it("rejects with the client's text when its handler throws", async () => {
    const err = await failure(context.clients.client(id()).invoke("fail"));
    expect(err.reason).toBe("client-error");
    expect(err.message).toBe("Error: from callback");
  });

  it("rejects when the client has no handler, or its handler returns nothing", async () => {
    for (const method of ["noSuchHandler", "nothing"]) {
      const err = await failure(context.clients.client(id()).invoke(method));
      expect(err.reason).toBe("client-error");
      expect(err.message).toBe("Client didn't provide a result.");
    }
  });

  it("rejects at the timeout, and ignores the answer that comes later", async () => {
    const err = await failure(context.clients.client(id()).invokeWith({ timeoutMs: 100 }, "never"));
    expect(err.reason).toBe("timeout");
    expect(err.message).toMatch(/did not answer 'never' within 100 ms/);
    const late = await failure(
      context.clients.client(id()).invokeWith({ timeoutMs: 20 }, "slowEcho", 1, 200),
    );
    expect(late.reason).toBe("timeout");
    await new Promise((resolve) => setTimeout(resolve, 300)); // the late answer arrives and is dropped
    expect(await context.clients.client(id()).invoke("add", 1, 1)).toBe(2);
  });

  it("rejects when the caller's signal aborts", async () => {
    const controller = new AbortController();
    const call = context.clients.client(id()).invokeWith({ signal: controller.signal }, "never");
    controller.abort();
    expect((await failure(call)).reason).toBe("canceled");
  });

  it("rejects at once for a connection that does not exist", async () => {
    const err = await failure(context.clients.client("no-such-connection").invoke("add", 1, 2));
    expect(err.reason).toBe("no-connection");
    expect(err.message).toBe("Connection 'no-such-connection' does not exist.");
  });

  it("answers a hub method that awaits its own caller, with one invocation slot", async () => {
    expect(await client.connection.invoke("AskCaller", "add", 20, 22)).toBe(42);
    expect(await client.connection.invoke("AskCallerTwice", "echo", "a", "b")).toEqual(["a", "b"]);
  });

  it("takes the answer even while the client's next invocation waits for the slot", async () => {
    // The handler sends another invocation before it answers: that one waits for the slot the
    // awaiting method holds, and the answer, behind it, must not wait with it.
    let touched: Promise<unknown> | undefined;
    client.connection.on("touchThenAnswer", () => {
      touched = client.connection.invoke("Touch");
      return "answered";
    });
    expect(await client.connection.invoke("AskCaller", "touchThenAnswer")).toBe("answered");
    await eventually(() => touched !== undefined);
    expect(await touched).toBeGreaterThan(0);
  });

  it("surfaces a failed client result to the client that invoked the hub method", async () => {
    await expect(client.connection.invoke("AskCaller", "fail")).rejects.toThrow(
      "An unexpected error occurred invoking 'AskCaller' on the server. ClientResultError: Error: from callback",
    );
  });
});

describe("a connection that ends first", () => {
  it("rejects every call waiting on it with the .NET text", async () => {
    const client = await connectClient(server.url("/results"));
    client.connection.on("never", () => new Promise(() => {}));
    const id = client.connection.connectionId!;
    const calls = [context.clients.client(id).invoke("never"), context.clients.client(id).invoke("never")];
    await client.stop();
    for (const call of calls) {
      const err = await failure(call);
      expect(err.reason).toBe("disconnected");
      expect(err.message).toBe(`Connection '${id}' disconnected.`);
    }
  });

  it("rejects a call made while it is closing", async () => {
    const client = await connectClient(server.url("/results"));
    const id = client.connection.connectionId!;
    const stopped = client.stop();
    const err = await failure(context.clients.client(id).invoke("never"));
    expect(["disconnected", "no-connection"]).toContain(err.reason);
    await stopped;
  });
});

describe("stateful reconnect", () => {
  for (const protocol of ["json", "messagepack"] as const) {
    it(`answers every call once whose invocation or answer crossed a cut WebSocket (${protocol})`, async () => {
      const proxy = await startCutProxy(server.baseUrl);
      let builder = new HubConnectionBuilder()
        .withUrl(proxy.url + "/results", { transport: HttpTransportType.WebSockets })
        .withStatefulReconnect()
        .configureLogging(LogLevel.None);
      if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
      const connection = builder.build();
      const ran = new Map<number, number>();
      connection.on("slowEcho", async (value: number, ms: number) => {
        ran.set(value, (ran.get(value) ?? 0) + 1);
        await new Promise((resolve) => setTimeout(resolve, ms));
        return value;
      });
      await connection.start();
      try {
        const id = connection.connectionId!;
        const calls = Array.from({ length: 30 }, (_, i) =>
          context.clients.client(id).invoke("slowEcho", i, 10 * (i % 10)),
        );
        let cuts = 0;
        for (let i = 0; i < 5; i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          cuts += proxy.cutAll();
          // The next cut only once the client has resumed: the official client tries to resume once, and a
          // cut of that attempt (likely on a busy machine) ends the connection instead, which is another test.
          await connection.invoke("touch");
        }
        expect(cuts).toBeGreaterThanOrEqual(3);
        expect(await Promise.all(calls)).toEqual(Array.from({ length: 30 }, (_, i) => i));
        // The client ran each handler once (replayed invocations it had are dropped by sequence id).
        expect([...ran.values()].every((n) => n === 1)).toBe(true);
        expect(ran.size).toBe(30);
        expect(connection.connectionId).toBe(id);
      } finally {
        await connection.stop();
        await proxy.close();
      }
    });
  }
});
