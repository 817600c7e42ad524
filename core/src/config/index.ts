// Environment fragments every process composes into its own env.ts schema (server/src/env.ts,
// worker/src/env.ts, cli/src/env.ts). Each variable is declared and commented once, here or in
// the one process that alone reads it.
export * from "./parse.js";
export * from "./database.js";
export * from "./logging.js";
export * from "./secrets.js";
export * from "./model.js";
export * from "./sandbox.js";
export * from "./telemetry.js";
