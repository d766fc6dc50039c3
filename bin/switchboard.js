#!/usr/bin/env node
// The switchboard command: the built CLI (npm run build) when there is one, else, in a checkout that was not
// built, the TypeScript source through tsx (a dependency: `npm start` runs the same way).
import { existsSync } from "node:fs";

const built = new URL("../dist/cli/main.js", import.meta.url);
if (existsSync(built)) {
  await import(built.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
