#!/usr/bin/env node
// Runs the CLI's built JavaScript (build/main.js, made by `npm run build`, which `npm ci` runs through the root's
// `prepare`). '#main' is the package's own import map (package.json "imports"): under `--conditions=source` (the
// tests start children that way, with tsx) it is src/main.ts instead, so tests never run a stale build.
await import('#main');
