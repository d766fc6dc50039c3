#!/usr/bin/env node
// Runs the built CLI (npm run build). During development, `npx tsx src/cli/main.ts` runs it from source.
import "../dist/cli/main.js";
