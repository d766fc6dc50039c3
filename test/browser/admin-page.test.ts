// The admin page in a real browser: Debian's Chromium, driven by playwright-core, on three real node
// processes behind the round-robin balancer, with an API key (no demo mode). Without the key the API refuses
// the page; with it the page lists the three nodes, finds a user connected with the official client,
// disconnects that connection (the client sees it and reconnects), and sends the user a test message.
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashApiKey } from "../../src/api/index.js";
import { createServer } from "../../src/index.js";
import { browser, launchChromium, outputDir, type Chromium } from "../support/chromium.js";
import { clusterForFile } from "../support/cluster.js";
import { connectClient, eventually } from "../support/hub-client.js";

const apiKey = "admin-page-test-key-0123456789";

describe("the admin option", () => {
  it("is off by default, and needs the API", async () => {
    const server = createServer({ hubs: {}, notifications: true, api: { allowWithoutKey: true } });
    const { port } = await server.listen(0);
    try {
      expect((await fetch(`http://127.0.0.1:${port}/admin`)).status).toBe(404);
    } finally {
      await server.close();
    }
    expect(() => createServer({ hubs: {}, notifications: true, admin: true })).toThrow(
      /Option 'admin' needs option 'api'/,
    );
  });
});

const file = clusterForFile("sb_admin", {
  nodes: 3,
  args: ["--admin", "--api-key-hash", hashApiKey(apiKey), "--node-timeout", "3000"],
});

describe.skipIf(!browser.path)(
  `the admin page in Chromium${browser.missing ? ` (skipped: ${browser.missing})` : ""}`,
  () => {
    let chromium: Chromium;
    let context: BrowserContext;
    let page: Page | undefined;
    const consoleLines: string[] = [];

    beforeAll(async () => {
      chromium = await launchChromium({ width: 1400, height: 1000 });
      context = chromium.context;
    }, 60_000);

    afterAll(async () => {
      await chromium?.close();
    });

    afterEach(async ({ task }) => {
      if (page && task.result?.state === "fail") {
        console.log(`The page's console:\n${consoleLines.join("\n")}`);
        await page.screenshot({ path: join(outputDir, "admin-failed.png"), fullPage: true }).catch(() => {});
      }
    });

    it("refuses without the key, then lists the nodes, finds, disconnects and messages a user", async () => {
      page = await context.newPage();
      page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
      await page.goto(file.cluster.url("/admin"));
      await page.getByText("The API refused the request: enter the API key above.").waitFor();
      expect(await page.locator("#nodes tbody tr").count()).toBe(0);
      await page.screenshot({ path: join(outputDir, "admin-refused.png"), fullPage: true });

      await page.locator("#key").fill(apiKey);
      await page.getByRole("button", { name: "Use key" }).click();
      await page.locator("#nodes[data-count='3']").waitFor();
      const shown = await page.locator("#nodes tbody tr td:first-child").allTextContents();
      expect(shown.sort()).toEqual(file.cluster.nodes.map((n) => n.nodeId.slice(0, 8)).sort());
      await page.getByText(/Live: refreshed at/).waitFor();

      // A user of the app, connected with the official client, reconnecting on its own.
      const ada = await connectClient(file.cluster.url("/hub?user=ada"), ["msg"], {
        reconnectDelays: [0, 100, 250, 500, 1000],
      });
      file.clients.push(ada);
      let reconnecting = 0;
      ada.connection.onreconnecting(() => reconnecting++);
      const firstId = ada.connection.connectionId!;

      await page.locator("#find-kind").selectOption("user");
      await page.locator("#find-query").fill("ada");
      await page.getByRole("button", { name: "Find" }).click();
      const line = page.locator(`#find-results [data-connection-id="${firstId}"]`);
      await line.waitFor();
      expect(await page.locator("#find-results p").first().textContent()).toContain("ada is online");
      await page.screenshot({ path: join(outputDir, "admin-user-found.png"), fullPage: true });

      await line.getByRole("button", { name: "Disconnect" }).click();
      await eventually(
        () =>
          reconnecting === 1 &&
          ada.connection.state === "Connected" &&
          ada.connection.connectionId !== firstId,
        15_000,
        "the client to see the disconnect and reconnect",
      );

      await page.locator("#send-user").fill("ada");
      await page.locator("#send-text").fill("Hello from the admin page");
      await page.getByRole("button", { name: "Send" }).click();
      await page.getByText("Sent to ada: reached 1 connection(s) on 1 node(s).").waitFor();
      await eventually(() => ada.received("msg").length > 0, 10_000, "the test message");
      expect(ada.received("msg")).toEqual([["Hello from the admin page"]]);
      await page.screenshot({ path: join(outputDir, "admin-message-sent.png"), fullPage: true });
    });
  },
);
