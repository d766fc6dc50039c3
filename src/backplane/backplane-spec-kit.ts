/**
 * What the conformance suite's cases share (backplane.case.ts, backplane-registry.case.ts): a cluster of
 * backplanes started per test and closed after it, connections, fences, and what each connection got.
 *
 * Delivery is asynchronous, so "nothing else arrived" is checked with a fence: each sender sends one more
 * message to every connection involved and the test waits for it; since one sender's messages arrive in
 * order, anything sent before the fence has arrived by then.
 */
import { afterEach } from "vitest";
import type { Backplane, BackplaneEventHandler, BackplaneMessage, SendTarget } from "./backplane.js";

export interface BackplaneSpecOptions {
  name: string;
  /** Creates `nodes` backplanes of one cluster, not yet started. */
  createCluster(nodes: number): Promise<Backplane[]> | Backplane[];
  /** The most nodes a cluster may have. @default 3 */
  maxNodes?: number;
}

export const HUB = "/chat";
const FENCE = "__fence";

class Recorder implements BackplaneEventHandler {
  readonly received = new Map<string, BackplaneMessage[]>();
  deliver(hub: string, connectionIds: readonly string[], message: BackplaneMessage): void {
    for (const id of connectionIds) {
      const key = `${hub}\n${id}`;
      this.received.set(key, [...(this.received.get(key) ?? []), message]);
    }
  }
}

export interface SpecNode {
  backplane: Backplane;
  recorder: Recorder;
}

export interface SpecConn {
  node: SpecNode;
  hub: string;
  id: string;
  user: string;
}

/** What the cases share: cluster set-up, connections, fences and what each connection got. */
export interface SpecKit {
  maxNodes: number;
  /** The hub most cases use. */
  hub: string;
  /** `n`, or `maxNodes` when that is smaller. */
  upTo(n: number): number;
  /** Starts a cluster of `count` nodes; it is closed after the test. */
  cluster(count: number): Promise<SpecNode[]>;
  /** Node `i` of the cluster, or the last one when the cluster is smaller. */
  on(nodes: SpecNode[], i: number): SpecNode;
  connect(node: SpecNode, id: string, user?: string, hub?: string): Promise<SpecConn>;
  /** Waits until every message sent so far by `senders` to `conns` has arrived. */
  fence(senders: SpecNode[], conns: SpecConn[]): Promise<void>;
  /** The messages a connection received (fences left out), as their first argument. */
  got(conn: SpecConn): unknown[];
  msg(value: unknown): BackplaneMessage;
}

let fences = 0;

async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const receivedBy = (c: SpecConn) => c.node.recorder.received.get(`${c.hub}\n${c.id}`) ?? [];

export function createKit(options: BackplaneSpecOptions): SpecKit {
  const maxNodes = options.maxNodes ?? 3;
  let running: SpecNode[] = [];
  afterEach(async () => {
    await Promise.all(running.map((node) => node.backplane.close()));
    running = [];
  });
  return {
    maxNodes,
    hub: HUB,
    upTo: (n) => Math.min(n, maxNodes),
    async cluster(count) {
      const backplanes = await options.createCluster(count);
      const nodes = backplanes.map((backplane) => ({ backplane, recorder: new Recorder() }));
      running.push(...nodes);
      await Promise.all(nodes.map((node) => node.backplane.start(node.recorder)));
      return nodes;
    },
    on: (nodes, i) => nodes[Math.min(i, nodes.length - 1)]!,
    async connect(node, id, user = "", hub = HUB) {
      await node.backplane.addConnection({ connectionId: id, hub, userId: user });
      return { node, hub, id, user };
    },
    async fence(senders, conns) {
      const expected = new Map<SpecConn, string[]>(conns.map((c) => [c, []]));
      for (const sender of senders) {
        for (const hub of new Set(conns.map((c) => c.hub))) {
          const token = `fence-${++fences}`;
          const inHub = conns.filter((c) => c.hub === hub);
          for (const conn of inHub) expected.get(conn)!.push(token);
          const target: SendTarget = { kind: "connections", hub, connectionIds: inHub.map((c) => c.id) };
          await sender.backplane.publish(target, { target: FENCE, arguments: [token] });
        }
      }
      const fenced = (c: SpecConn) =>
        receivedBy(c)
          .filter((m) => m.target === FENCE)
          .map((m) => m.arguments[0]);
      await waitFor(
        () => conns.every((c) => expected.get(c)!.every((token) => fenced(c).includes(token))),
        "the fence to reach every connection",
      );
    },
    got: (conn) =>
      receivedBy(conn)
        .filter((m) => m.target !== FENCE)
        .map((m) => m.arguments[0]),
    msg: (value) => ({ target: "receive", arguments: [value] }),
  };
}
