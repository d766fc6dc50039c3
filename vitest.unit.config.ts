// `npm run test:unit`: the unit tests next to the code, in seconds: no PostgreSQL, no browser, no processes.
// `npm test` (what CI runs) is the whole suite.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    exclude: ["src/**/*.integration.test.ts", "**/node_modules/**"],
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? "silent" },
  },
});
