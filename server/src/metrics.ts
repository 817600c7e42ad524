// Prometheus metrics: prom-client's default process metrics plus a request counter.
import { collectDefaultMetrics, Counter, Registry } from "prom-client";

const g = globalThis as unknown as { __keelMetrics?: { registry: Registry; httpRequests: Counter<"method" | "status"> } };

function init() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "keel_web_" });
  const httpRequests = new Counter({
    name: "keel_web_http_requests_total",
    help: "API requests by method and status",
    labelNames: ["method", "status"] as const,
    registers: [registry],
  });
  return { registry, httpRequests };
}

export const metrics = (g.__keelMetrics ??= init());
export const httpRequests = metrics.httpRequests;
