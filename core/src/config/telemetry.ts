import { z } from "zod";
import { int, optional } from "./parse.js";

/** Metrics and traces, read by every process (web and worker). Off unless configured. */
export const telemetryEnv = {
  /** When set, /metrics (web, and the worker's metrics port) answers only `Authorization: Bearer <this token>` (16+ characters). Unset: open; block it at the ingress. */
  KEEL_METRICS_TOKEN: optional(z.string().min(16, "KEEL_METRICS_TOKEN must be at least 16 characters")),
  /** OTLP/HTTP (protobuf) collector base URL, e.g. http://otel-collector:4318: spans go to <this>/v1/traces. Unset: no traces are recorded or sent. */
  OTEL_EXPORTER_OTLP_ENDPOINT: optional(
    z.url({ protocol: /^https?$/, error: "OTEL_EXPORTER_OTLP_ENDPOINT must be an http(s) URL, e.g. http://otel-collector:4318" }),
  ),
  /** Milliseconds between span batches sent to the collector (the OpenTelemetry SDK's variable and default). */
  OTEL_BSP_SCHEDULE_DELAY: int(5_000, 1),
  /** service.name of this process's spans. Unset: keel-web or keel-worker. */
  OTEL_SERVICE_NAME: optional(z.string().min(1).max(200)),
};
