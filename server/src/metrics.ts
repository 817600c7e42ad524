// Prometheus metrics: prom-client's default process metrics, a request counter, and the engine's
// figures (core/src/telemetry: queue depth and age, events appended) on one registry; the
// tracer (OTLP) when OTEL_EXPORTER_OTLP_ENDPOINT is set.
import { collectDefaultMetrics, Counter, Registry, registerQueueMetrics, startTracing, Telemetry, type Tracing } from "@keel/core/telemetry";
import type { Pool } from "@keel/core";
import type { WebEnv } from "./env";

type WebMetrics = { registry: Registry; httpRequests: Counter<"method" | "status">; telemetry?: { telemetry: Telemetry; tracing: Tracing } };
const g = globalThis as unknown as { __keelMetrics?: WebMetrics };

function init(): WebMetrics {
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

/** The web's Telemetry, made once per process (its metrics register once on the shared registry). */
export function webTelemetry(env: WebEnv, pool: Pool, version?: string): Telemetry {
  if (!metrics.telemetry) {
    const tracing = startTracing({
      endpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT,
      serviceName: env.OTEL_SERVICE_NAME ?? "keel-web",
      serviceVersion: version,
      scheduledDelayMs: env.OTEL_BSP_SCHEDULE_DELAY,
    });
    registerQueueMetrics(metrics.registry, pool);
    metrics.telemetry = { telemetry: new Telemetry({ registry: metrics.registry, tracer: tracing.tracer }), tracing };
  }
  return metrics.telemetry.telemetry;
}
