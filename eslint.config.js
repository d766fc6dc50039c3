// Lint rules, and the layer rule of ../shared/design.md: imports flow downward only.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** The layers no backplane may import. */
const aboveBackplanes = ["transport", "hub", "server", "api", "cli"];

/** Each layer folder, with the layers it must not import (one entry per file: a later match would replace it). */
const forbiddenImports = {
  "src/protocol/**": ["transport", "hub", "backplane", "server", "api", "cli"],
  "src/transport/**": ["hub", "backplane", "server", "api", "cli"],
  "src/hub/**": ["server", "api", "cli", "backplane/memory", "backplane/postgres", "backplane/redis"],
  "src/connections/**": ["hub", "backplane", "notifications", "server", "api", "cli"],
  "src/backplane/*.ts": aboveBackplanes,
  // Each backplane stands alone on the shared pieces (backplane/shared): a third is one more folder.
  "src/backplane/postgres/**": [...aboveBackplanes, "redis", "memory"],
  "src/backplane/redis/**": [...aboveBackplanes, "postgres", "memory"],
  "src/backplane/memory/**": [...aboveBackplanes, "postgres", "redis"],
  "src/backplane/shared/**": [...aboveBackplanes, "postgres", "redis", "memory"],
  "src/notifications/**": [
    "transport",
    "server",
    "api",
    "cli",
    "backplane/memory",
    "backplane/postgres",
    "backplane/redis",
  ],
  "src/api/**": ["server", "cli", "transport"],
  "src/server/**": ["cli"],
};

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", ".switchboard/**", "web/vendor/**", "test-output/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-non-null-assertion": "off",
    },
  },
  ...Object.entries(forbiddenImports).map(([files, layers]) => ({
    files: [files],
    ignores: ["**/*.test.ts", "**/*.case.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: layers.map((layer) => ({
            group: [`**/${layer}/**`, `**/${layer}/*`, `../${layer}`, `../${layer}/*`],
            message: `This layer must not import ${layer}/ (see ../shared/design.md: imports flow downward only).`,
          })),
        },
      ],
    },
  })),
  {
    files: ["web/**/*.js"],
    languageOptions: {
      globals: {
        window: "readonly",
        document: "readonly",
        signalR: "readonly",
        fetch: "readonly",
        console: "readonly",
        location: "readonly",
        URL: "readonly",
        URLSearchParams: "readonly",
        performance: "readonly",
        setTimeout: "readonly",
        setInterval: "readonly",
        sessionStorage: "readonly",
        Option: "readonly",
      },
    },
  },
  {
    files: ["bin/**/*.js", "*.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
);
