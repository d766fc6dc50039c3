// The write-up's six steps, against whatever stands in front of the nodes (our balancer, nginx):
// the same scenario must hold behind both.
import { expect } from "vitest";
import { connectClient, type TestClient, type TransportKey } from "./hub-client.js";

export function notifyThrough(baseUrl: string, identifier: string, body: object): Promise<Response> {
  return fetch(`${baseUrl}/api/notifications/${encodeURIComponent(identifier)}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/**
 * 1. Client A connects through the front (its negotiate and WebSocket may reach different nodes);
 * 2. A registers its identifier, and the answer names the node holding A ("node 1");
 * 3. B, a back end, asks the HTTP API to notify the identifier; 4. the front hands that request to another
 *    node ("node 2") - it takes turns, so within a few requests one is served elsewhere (each earlier one,
 *    served by A's node, notifies A too);
 * 5. node 2 finds A's connection in the registry and sends through the backplane to node 1;
 * 6. A receives the status text.
 * Returns A's client (the caller stops it).
 */
export async function runWriteUpScenario(
  baseUrl: string,
  nodeIds: string[],
  transport: TransportKey = "WebSockets",
): Promise<TestClient> {
  const a = await connectClient(`${baseUrl}/hubs/notifications`, ["addMessage"], { transport });
  // One identifier per transport, so that several runs against one cluster do not meet.
  const identifier = transport === "WebSockets" ? "order-42" : `order-42-${transport}`;
  const registration = (await a.connection.invoke("register", identifier)) as { nodeId: string };
  expect(nodeIds).toContain(registration.nodeId);
  let response: Response;
  let requests = 0;
  do {
    response = await notifyThrough(baseUrl, identifier, { status: "Confirmed" });
    requests++;
  } while (response.headers.get("X-Switchboard-Node") === registration.nodeId && requests < 6);
  const apiNode = response.headers.get("X-Switchboard-Node");
  expect(nodeIds).toContain(apiNode);
  expect(apiNode).not.toBe(registration.nodeId);
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({
    identifier,
    text: "Your request has been confirmed.",
    connections: 1,
    nodes: 1,
    stored: false,
  });
  expect(await a.next("addMessage", requests)).toEqual(["Your request has been confirmed."]);
  return a;
}

/** An identifier nobody registered is a clear 404 not_connected, not a silent drop. */
export async function expectNotConnected(baseUrl: string): Promise<void> {
  const response = await notifyThrough(baseUrl, "nobody-registered-this", { status: "Failed" });
  expect(response.status).toBe(404);
  expect(await response.json()).toEqual({
    error:
      "No connection for identifier 'nobody-registered-this': nobody has registered it, or all its connections have ended.",
    code: "not_connected",
  });
}
