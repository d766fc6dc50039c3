// The examples in examples/ work as written: the official client reaches the hub, the app its routes.
import { describe, expect, it } from "vitest";
import { startExpressExample } from "../../examples/express.js";
import { startFastifyExample } from "../../examples/fastify.js";
import { connectClient } from "../support/hub-client.js";

describe.each([
  ["Express", startExpressExample],
  ["Fastify", startFastifyExample],
])("the %s example", (_name, start) => {
  it("serves its own routes and the hub on one port, and a route reaches the hub's clients", async () => {
    const example = await start(0);
    try {
      expect((await fetch(`${example.url}/`)).status).toBe(200);
      const client = await connectClient(`${example.url}/hubs/chat`, ["message"]);
      await client.connection.invoke("Send", "hello");
      expect(await client.next("message", 1)).toEqual([client.connection.connectionId, "hello"]);
      const announce = await fetch(`${example.url}/announce`, {
        method: "POST",
        headers: { "Content-Type": _name === "Express" ? "text/plain" : "application/json" },
        body: _name === "Express" ? "from a route" : JSON.stringify({ text: "from a route" }),
      });
      expect(await announce.json()).toEqual({ connections: 1, nodes: 1 });
      expect(await client.next("message", 2)).toEqual(["server", "from a route"]);
      await client.stop();
    } finally {
      await example.close();
    }
  });
});
