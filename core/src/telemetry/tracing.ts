// The OpenTelemetry SDK for one process: spans batched and exported over OTLP/HTTP (protobuf) to
// the configured collector, the run's trace context carried across async calls by
// AsyncLocalStorage. Configured by the process (its env.ts reads OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_SERVICE_NAME); without an endpoint nothing is set up and the tracer is the no-op one.
import { context, type Tracer } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

export type TracingOptions = {
  /** OTLP/HTTP base URL (http://collector:4318); spans go to <endpoint>/v1/traces. Undefined: tracing off. */
  endpoint: string | undefined;
  serviceName: string;
  serviceVersion?: string;
  /** Longest the exporter waits between batches (the SDK's default is 5 s). */
  scheduledDelayMs?: number;
};

export type Tracing = {
  tracer: Tracer | undefined;
  /** Sends what is buffered now (tests, and drain before exit). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
};

let contextManager: AsyncLocalStorageContextManager | null = null;

export function startTracing(o: TracingOptions): Tracing {
  if (!o.endpoint) return { tracer: undefined, flush: async () => {}, shutdown: async () => {} };
  // One per process: the OpenTelemetry API keeps a single global context manager.
  if (!contextManager) {
    contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
  }
  const exporter = new OTLPTraceExporter({ url: new URL("v1/traces", o.endpoint.endsWith("/") ? o.endpoint : `${o.endpoint}/`).toString() });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ "service.name": o.serviceName, ...(o.serviceVersion ? { "service.version": o.serviceVersion } : {}) }),
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: o.scheduledDelayMs ?? 5_000 })],
  });
  return {
    tracer: provider.getTracer("keel"),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
