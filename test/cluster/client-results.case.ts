// Client results across nodes: three real node processes on one PostgreSQL. A hub method on one node
// asks a connection on another for a result; the Invocation and the answer travel through the backplane.
// Every way a call can end is checked: a value, the client's error, no handler, the timeout, the
// connection leaving, its node killed, and the connection moving to another node while the call waits.
import { HttpTransportType, HubConnectionBuilder, LogLevel } from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../support/cluster.js";
import { startCutProxy } from "../support/cut-proxy.js";
import type { TestBackplane } from "../support/test-backplanes.js";
import { connectClient, type ProtocolName, type TestClient } from "../support/hub-client.js";
// The cases run on PostgreSQL (client-results.test.ts) and on a Redis Cluster (redis-client-results.test.ts).

export function clientResultsCases(backplane: TestBackplane): void {
  let cluster: Cluster;
  const clients: TestClient[] = [];

  type Answer = { value?: unknown; reason?: string; message?: string };

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 3,
      ...(await backplane.start()),
      args: ["--node-timeout", "3000"],
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.stop()));
    await cluster?.stop();
    await backplane.stop();
  });

  /** Resolves once a client's "never" handler ran (the server then waits for an answer that never comes). */
  const askedNever = new Map<TestClient, Promise<void>>();

  /** A client on node `node` with the handlers the calls below ask for. */
  async function answerer(node: number, protocol: ProtocolName = "json") {
    const client = await connectClient(cluster.nodeUrl(node, "/hub"), [], { protocol });
    clients.push(client);
    let asked: () => void = () => {};
    askedNever.set(client, new Promise<void>((resolve) => (asked = resolve)));
    client.connection.on("add", (a: number, b: number) => a + b);
    client.connection.on("echo", (value: unknown) => value);
    client.connection.on("fail", () => {
      throw new Error("from callback");
    });
    client.connection.on("never", () => {
      asked();
      return new Promise(() => {});
    });
    return client;
  }

  async function asker(node: number, protocol: ProtocolName = "json") {
    const client = await connectClient(cluster.nodeUrl(node, "/hub"), [], { protocol });
    clients.push(client);
    return client;
  }

  const ask = (
    from: TestClient,
    to: TestClient | string,
    method: string,
    args: unknown[],
    timeoutMs?: number,
  ) =>
    from.connection.invoke<Answer>(
      "AskClient",
      typeof to === "string" ? to : to.connection.connectionId!,
      method,
      args,
      timeoutMs,
    );

  describe("client results across nodes", () => {
    for (const protocol of ["json", "messagepack"] as const) {
      it(`carries the client's value back to the node that asked (${protocol})`, async () => {
        const [a, b] = await Promise.all([answerer(2, protocol), asker(1, protocol)]);
        expect(await ask(b, a, "add", [2, 3])).toEqual({ value: 5 });
        const value =
          protocol === "messagepack"
            ? {
                when: new Date("2026-12-06T10:00:00.000Z"),
                bytes: new Uint8Array([0, 1, 254, 255]),
                list: [1, null],
              }
            : { when: "2026-12-06T10:00:00.000Z", text: "héllo ✓", list: [1, null] };
        expect(await ask(b, a, "echo", [value])).toEqual({ value });
        // Many at once, from two other nodes, each answer to its own call.
        const c = await asker(0, protocol);
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, i) => ask(i % 2 === 0 ? b : c, a, "add", [i, 1000])),
        );
        expect(answers.map((x) => x.value)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1000));
      });
    }

    it("brings back the client's error, and its missing handler", async () => {
      const [a, b] = await Promise.all([answerer(0), asker(2)]);
      expect(await ask(b, a, "fail", [])).toEqual({
        reason: "client-error",
        message: "Error: from callback",
      });
      expect(await ask(b, a, "noSuchHandler", [])).toEqual({
        reason: "client-error",
        message: "Client didn't provide a result.",
      });
    });

    it("times out, and says so", async () => {
      const [a, b] = await Promise.all([answerer(1), asker(0)]);
      const answer = await ask(b, a, "never", [], 300);
      expect(answer.reason).toBe("timeout");
      expect(answer.message).toMatch(/did not answer 'never' within 300 ms/);
    });

    it("fails at once for a connection nobody holds", async () => {
      const b = await asker(1);
      expect(await ask(b, "no-such-connection", "add", [1, 2])).toEqual({
        reason: "no-connection",
        message: "Connection 'no-such-connection' does not exist.",
      });
    });

    it("fails when the connection leaves before it answers: its node tells the asking node", async () => {
      const [a, b] = await Promise.all([answerer(2), asker(0)]);
      const id = a.connection.connectionId!;
      const call = ask(b, a, "never", [], 60_000);
      await askedNever.get(a);
      await a.stop();
      expect(await call).toEqual({ reason: "disconnected", message: `Connection '${id}' disconnected.` });
    });
  });

  describe("a stateful connection that moves while a call waits", () => {
    it("answers from the node it moved to", async () => {
      // The proxy sends the client's next socket to node 1; the calls come from node 2, which never held it.
      const proxy = await startCutProxy(cluster.nodeUrl(0, ""));
      const connection = new HubConnectionBuilder()
        .withUrl(proxy.url + "/hub", { transport: HttpTransportType.WebSockets })
        .withStatefulReconnect()
        .withHubProtocol(new MessagePackHubProtocol())
        .configureLogging(LogLevel.None)
        .build();
      const ran: number[] = [];
      let release: () => void = () => {};
      const gate = new Promise<void>((resolve) => (release = resolve));
      connection.on("gated", async (n: number) => {
        ran.push(n);
        await gate;
        return n * 2;
      });
      await connection.start();
      // One asker each: a client's invocations run one at a time (maximumParallelInvocationsPerClient).
      const askers = await Promise.all([asker(2), asker(2), asker(2)]);
      try {
        const from = await connection.invoke<string>("Node");
        const calls = [1, 2, 3].map((n, i) =>
          ask(askers[i]!, connection.connectionId!, "gated", [n], 60_000),
        );
        while (ran.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
        proxy.retarget(cluster.nodeUrl(1, ""));
        proxy.cutAll();
        // The client resumes on node 1, which takes the connection over; then the handlers answer.
        let to = from;
        while (to === from) to = await connection.invoke<string>("Node");
        release();
        expect(await Promise.all(calls)).toEqual([{ value: 2 }, { value: 4 }, { value: 6 }]);
        expect(ran.sort()).toEqual([1, 2, 3]);
      } finally {
        await connection.stop();
        await proxy.close();
      }
    });
  });

  describe("a node that dies", () => {
    it("fails well before its timeout when the node holding the connection is killed", async () => {
      // The test's own timeout (30 s) is half the call's: only the registry's word can end it in time.
      const [a, b] = await Promise.all([answerer(2), asker(1)]);
      const call = ask(b, a, "never", [], 60_000);
      await askedNever.get(a);
      await cluster.kill(2);
      const answer = await call;
      expect(["node-gone", "disconnected"]).toContain(answer.reason);
    }, 30_000);
  });
}
