#!/usr/bin/env node
// The switchboard command: the built CLI (npm run build) when there is one, else, in a checkout that was not
// built, the TypeScript source through tsx (a development dependency: `npm start` runs the same way).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const tsx = await import("tsx/esm/api").catch(() => undefined);
  if (tsx === undefined) {
    console.error(
      "switchboard: this checkout is not built: run 'npm run build', or 'npm ci' to install tsx.",
    );
    process.exit(1);
  }
  tsx.register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
