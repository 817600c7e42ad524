// @keel/core/telemetry: what a process needs to set up metrics and traces (the engine itself
// takes only a Telemetry, exported from the main entry).
export * from "./telemetry.js";
export * from "./hooks.js";
export * from "./metrics.js";
export * from "./tracing.js";
export * from "./metrics-server.js";
export { Registry, collectDefaultMetrics } from "prom-client";
export { Counter, Gauge, Histogram } from "prom-client";
