// Debian's Chromium for the browser tests, driven by playwright-core: found once, launched with a profile
// folder of its own, closed with that folder removed.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext } from "playwright-core";
import { findSystemProgram } from "./system-programs.js";

export const browser = await findSystemProgram({
  name: "chromium",
  path: "/usr/bin/chromium",
  aptPackage: "chromium",
});

/** Where the browser tests leave their screenshots. */
export const outputDir = fileURLToPath(new URL("../../test-output/browser/", import.meta.url));

/** Chromium's own network look-ups are refused on our machines; these flags keep it from trying. */
const chromiumArgs = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Chromium {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile; `close` ends it and removes the profile. */
export async function launchChromium(viewport: { width: number; height: number }): Promise<Chromium> {
  await mkdir(outputDir, { recursive: true });
  const profileDir = await mkdtemp(join(tmpdir(), "switchboard-chromium-"));
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: browser.path!,
    args: chromiumArgs,
    headless: true,
    viewport,
    timeout: 30_000,
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    async close() {
      await context.close();
      await rm(profileDir, { recursive: true, force: true });
    },
  };
}
