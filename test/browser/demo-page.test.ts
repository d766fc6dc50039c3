// The demo page in a real browser: Debian's Chromium, driven by playwright-core, opens the page of three real
// node processes behind the round-robin balancer (as `switchboard demo` runs them). Client A registers,
// client B notifies through the HTTP API, and A's panel shows the message; an unknown identifier is an error.
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startCluster, type Cluster } from "../support/cluster.js";
import { browser, launchChromium, outputDir, type Chromium } from "../support/chromium.js";
import { createTestSchema, type TestSchema } from "../support/database.js";

describe.skipIf(!browser.path)(
  `the demo page in Chromium${browser.missing ? ` (skipped: ${browser.missing})` : ""}`,
  () => {
    let schema: TestSchema;
    let cluster: Cluster;
    let chromium: Chromium;
    let context: BrowserContext;
    let openPage: Page | undefined;
    let pageErrors: string[];

    beforeAll(async () => {
      schema = await createTestSchema("sb_browser");
      cluster = await startCluster({
        nodes: 3,
        databaseUrl: schema.url,
        schema: schema.schema,
        hubs: false,
        args: ["--page", "--demo-mode"],
      });
      chromium = await launchChromium({ width: 1280, height: 860 });
      context = chromium.context;
    }, 120_000);

    afterAll(async () => {
      await chromium?.close();
      await cluster?.stop();
      await schema?.drop();
    });

    let consoleLines: string[] = [];

    /** Opens the demo page and waits until both panels show the node their connection landed on. */
    async function openDemo(query = ""): Promise<Page> {
      const page = (openPage = await context.newPage());
      pageErrors = [];
      consoleLines = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
      await page.goto(cluster.url(`/${query}`));
      await page.getByTestId("a-node").locator(".node").waitFor();
      await page.getByTestId("b-node").locator(".node").waitFor();
      return page;
    }

    // A failed test leaves its page's screenshot in test-output/browser/ and its console in the output.
    afterEach(async ({ task }) => {
      if (!openPage) return;
      if (task.result?.state === "fail") {
        console.log(`The page's console:\n${consoleLines.join("\n")}`);
        const name = task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60);
        await openPage
          .screenshot({ path: join(outputDir, `failed-${name}.png`), fullPage: true })
          .catch(() => {});
      }
      await openPage.close();
      openPage = undefined;
    });

    it("A registers, B notifies through the API, and A's panel shows the message and its timing", async () => {
      const page = await openDemo();
      const nodeIds = cluster.nodes.map((n) => n.nodeId);
      const panelA = page.getByTestId("panel-a");
      const panelB = page.getByTestId("panel-b");
      expect(nodeIds).toContain(
        await panelA.getByTestId("a-node").locator(".node").getAttribute("data-node-id"),
      );
      expect(nodeIds).toContain(
        await panelB.getByTestId("b-node").locator(".node").getAttribute("data-node-id"),
      );

      await panelA.getByLabel("Identifier to register").fill("order-42");
      await panelA.getByRole("button", { name: "Register" }).click();
      await panelA.getByTestId("a-registration").getByText("order-42").waitFor();
      const aNode = await panelA.getByTestId("a-node").locator(".node").getAttribute("data-node-id");

      // The balancer takes turns; within a few clicks B's request is served by another node than A's.
      const bLog = panelB.getByTestId("b-log").locator("li");
      const aMessages = panelA.getByTestId("a-messages").locator("li");
      let apiNode: string | null = null;
      for (let click = 1; click <= 6 && (apiNode === null || apiNode === aNode); click++) {
        await panelB.getByRole("button", { name: "Confirmed" }).click();
        // Newest first: the click-th entry of each list exists once B got its answer and A its message.
        await bLog.nth(click - 1).waitFor();
        await aMessages.nth(click - 1).waitFor();
        apiNode = await bLog.first().locator(".node").getAttribute("data-node-id");
      }
      expect(nodeIds).toContain(apiNode);
      expect(apiNode).not.toBe(aNode);
      expect(await bLog.first().textContent()).toContain("Confirmed → order-42");
      expect(await bLog.first().textContent()).toContain("reached 1 connection on 1 node");
      expect(await bLog.first().textContent()).toContain("not A's node: the backplane carried it");
      expect(await aMessages.first().locator("strong").textContent()).toBe(
        "Your request has been confirmed.",
      );
      expect(await aMessages.first().locator(".timing").textContent()).toMatch(
        /^\d+\.\d ms after B's click$/,
      );
      await page.screenshot({ path: join(outputDir, "notification-demo.png"), fullPage: true });

      await panelB.getByLabel("Or a message of your own").fill("Your parcel has left the depot");
      await panelB.getByRole("button", { name: "Send message" }).click();
      await aMessages.getByText("Your parcel has left the depot").waitFor();
      expect(await panelB.getByRole("alert").textContent()).toBe("");
      expect(pageErrors).toEqual([]);
    });

    it.each(["ServerSentEvents", "LongPolling"])(
      "works on %s too, chosen on the page, through the balancer without sticky sessions",
      async (transport) => {
        const page = await openDemo();
        await page.getByLabel("Transport").selectOption(transport);
        await page.waitForURL(`**/?transport=${transport}`);
        await page.getByTestId("a-node").locator(".node").waitFor();
        await page.getByTestId("b-node").locator(".node").waitFor();
        expect(await page.getByLabel("Transport").inputValue()).toBe(transport);

        const panelA = page.getByTestId("panel-a");
        const identifier = `order-${transport}`;
        await panelA.getByLabel("Identifier to register").fill(identifier);
        await panelA.getByRole("button", { name: "Register" }).click();
        await panelA.getByTestId("a-registration").getByText(identifier).waitFor();
        const panelB = page.getByTestId("panel-b");
        await panelB.getByLabel("Identifier to notify").fill(identifier);
        for (let click = 1; click <= 3; click++) {
          await panelB.getByRole("button", { name: "Confirmed" }).click();
          await panelA
            .getByTestId("a-messages")
            .locator("li")
            .nth(click - 1)
            .waitFor();
        }
        expect(await panelA.getByTestId("a-messages").locator("li").count()).toBe(3);
        expect(pageErrors).toEqual([]);
      },
    );

    it("with 'Wait until A confirms', B's answer names A as the one who confirmed", async () => {
      const page = await openDemo();
      const panelA = page.getByTestId("panel-a");
      const panelB = page.getByTestId("panel-b");
      await panelA.getByLabel("Identifier to register").fill("order-confirm");
      await panelA.getByRole("button", { name: "Register" }).click();
      await panelA.getByTestId("a-registration").getByText("order-confirm").waitFor();
      await panelB.getByLabel("Identifier to notify").fill("order-confirm");
      await panelB.getByLabel("Wait until A confirms", { exact: false }).check();
      await panelB.getByRole("button", { name: "Confirmed" }).click();
      const entry = panelB.getByTestId("b-log").locator("li").first();
      await entry.getByText("confirmed by A", { exact: false }).waitFor();
      expect(await panelA.getByTestId("a-messages").locator("li").first().textContent()).toContain(
        "confirmed to B",
      );
      await page.screenshot({ path: join(outputDir, "notification-demo-confirmed.png"), fullPage: true });
      expect(pageErrors).toEqual([]);
    });

    it("shows the API's not_connected error for an identifier nobody registered", async () => {
      const page = await openDemo();
      const panelB = page.getByTestId("panel-b");
      await panelB.getByLabel("Identifier to notify").fill("nobody-registered-this");
      await panelB.getByRole("button", { name: "Failed" }).click();

      const alert = panelB.getByRole("alert");
      await alert
        .getByText("No connection for identifier 'nobody-registered-this'", { exact: false })
        .waitFor();
      expect(await panelB.getByTestId("b-log").locator("li.failed").first().textContent()).toContain(
        "404 not_connected",
      );
      expect(await page.getByTestId("a-messages").locator("li").count()).toBe(0);
      await page.screenshot({ path: join(outputDir, "notification-demo-not-connected.png"), fullPage: true });
      expect(pageErrors).toEqual([]);
    });

    it("keeps the chat demo one link away", async () => {
      const page = await openDemo();
      await page.getByRole("link", { name: "Chat demo" }).click();
      await page.waitForURL("**/chat.html");
      await page.locator("#status").getByText("connected", { exact: true }).waitFor();
      expect(pageErrors).toEqual([]);
    });
  },
);
