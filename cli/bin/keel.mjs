#!/usr/bin/env node
// The one entry point for every Keel process: keel up | migrate | worker.
// TypeScript runs through tsx's loader (no build step to forget; the Docker image does the same).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/main.ts");
await main(process.argv.slice(2));
