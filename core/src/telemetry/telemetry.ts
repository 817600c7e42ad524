// Telemetry: the EngineTelemetry (hooks.ts) that records Prometheus figures (metrics.ts) and
// OpenTelemetry spans. Callers make one call per thing measured and never touch prom-client or
// the OpenTelemetry API themselves. Built with nothing, it records metrics into a private registry
// and makes no spans (the no-op tracer).
//
// What goes into span attributes: ids (run, session, team, tool call), names (model, tool,
// driver), counts and outcome words. Never message or tool contents, arguments, results, error
// texts (a provider's error may quote the request) or secrets: traces leave the process for a
// collector that the team's data-access rules do not cover.
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { Registry } from "prom-client";
import type { ClaimedRun } from "../engine/types.js";
import type { ClaimTrace, EngineTelemetry, RunTelemetry } from "./hooks.js";
import { EngineMetrics } from "./metrics.js";

export type { ClaimTrace, EngineTelemetry, RunEnd, RunTelemetry } from "./hooks.js";

export type TelemetryOptions = {
  /** Where the metrics go (served as /metrics by the process). Default: a private registry. */
  registry?: Registry;
  /** From startTracing(); default: no spans. */
  tracer?: Tracer;
};

const w3c = new W3CTraceContextPropagator();
const getter = { get: (c: Record<string, string>, k: string) => c[k], keys: (c: Record<string, string>) => Object.keys(c) };

/** The trace context a W3C `traceparent` header names, or undefined for a missing or malformed one (a new trace starts). */
export function traceContextOf(traceparent: string | null | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, { traceparent }, getter);
}

/** The `traceparent` header value for a span, or undefined when it has no valid context. */
export function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, { set: (c, k, v) => (c[k] = v) });
  return carrier.traceparent;
}

const seconds = (sinceMs: number) => (performance.now() - sinceMs) / 1000;

export class Telemetry implements EngineTelemetry {
  readonly registry: Registry;
  readonly metrics: EngineMetrics;
  private readonly tracer: Tracer;

  constructor(o: TelemetryOptions = {}) {
    this.registry = o.registry ?? new Registry();
    this.metrics = new EngineMetrics(this.registry);
    this.tracer = o.tracer ?? trace.getTracer("keel");
  }

  /**
   * A span for an API request, continuing the caller's `traceparent` header (a malformed one is
   * ignored). Its traceparent is what the request stores on the run it enqueues. With tracing off
   * the caller's context passes through unchanged, so the workers still continue the caller's trace.
   */
  request(method: string, route: string, traceparent: string | null): { traceparent: string | undefined; end(status: number): void } {
    const span = this.tracer.startSpan(
      `${method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "http.route": route } },
      traceContextOf(traceparent),
    );
    return {
      traceparent: traceparentOf(span),
      end: (status) => {
        span.setAttribute("http.response.status_code", status);
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  /** A worker claimed `run`: the dispatch figure, and the run's span (continuing the trace stored on the run) with its claim. */
  runClaimed(run: ClaimedRun, c: ClaimTrace): RunTelemetry {
    this.metrics.dispatch.observe(Math.max(0, c.queuedMs) / 1000);
    const attributes = {
      "keel.run.id": run.id,
      "keel.session.id": run.sessionId,
      "keel.team.id": run.teamId,
      "keel.run.attempt": run.attempt,
      "keel.run.takeovers": run.takeovers,
      "keel.run.epoch": run.epoch.toString(),
      "keel.worker.id": run.workerId,
    };
    const span = this.tracer.startSpan("keel.run", { attributes, startTime: c.claimStartedAt }, traceContextOf(c.traceparent));
    const runContext = trace.setSpan(ROOT_CONTEXT, span);
    this.tracer.startSpan("keel.run.claim", { attributes: { "keel.run.queued_ms": c.queuedMs }, startTime: c.claimStartedAt }, runContext).end();
    const started = performance.now();
    const counted = (type: string) => this.metrics.eventsAppended.inc({ type });
    let ended = false;
    return {
      step: (fn) => context.with(runContext, fn),
      context: (ctx) => ({
        ...ctx,
        append: async (e) => {
          const seq = await ctx.append(e);
          counted(e.type);
          return seq;
        },
        ledger: {
          ...ctx.ledger,
          recordModelReply: async (r) => {
            const seq = await ctx.ledger.recordModelReply(r);
            counted(r.event.type);
            return seq;
          },
          recordResult: async (key, outcome, event) => {
            const seq = await ctx.ledger.recordResult(key, outcome, event);
            counted(event.type);
            return seq;
          },
        },
      }),
      end: (outcome) => {
        if (ended) return;
        ended = true;
        this.metrics.runDuration.observe({ outcome }, seconds(started));
        span.setAttribute("keel.run.outcome", outcome);
        if (outcome === "failed" || outcome === "claim_lost") span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  /** A sweep took a run over from a dead or silent worker. */
  takenOver(t: { reason: string; silentMs: number | null }): void {
    this.metrics.takeovers.inc({ reason: t.reason });
    if (t.silentMs !== null) this.metrics.takeoverTime.observe(Math.max(0, t.silentMs) / 1000);
  }

  /** One model call; `call` gets a function to invoke on every streamed delta (the first one marks time to first token). */
  async modelCall<T>(a: { model: string }, call: (delta: () => void) => Promise<T>): Promise<T> {
    return this.timed(
      "keel.model.call",
      { kind: SpanKind.CLIENT, attributes: { "gen_ai.operation.name": "chat", "gen_ai.request.model": a.model } },
      (span) => {
        const started = performance.now();
        let first = true;
        return call(() => {
          if (!first) return;
          first = false;
          const s = seconds(started);
          this.metrics.firstToken.observe(s);
          span.setAttribute("keel.model.first_token_ms", Math.round(s * 1000));
        });
      },
      (outcome, s) => this.metrics.modelCall.observe({ outcome }, s),
    );
  }

  /** One tool call; `ok` tells a result that reports a failure from a success. */
  async toolCall<T>(a: { tool: string; callId: string }, call: () => Promise<T>, ok: (r: T) => boolean): Promise<T> {
    const attributes = { "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": a.tool, "gen_ai.tool.call.id": a.callId };
    return this.timed(
      "keel.tool.call",
      { attributes },
      () => call(),
      (outcome, s) => this.metrics.toolCall.observe({ tool: a.tool, outcome }, s),
      ok,
    );
  }

  /** Getting the session's sandbox ready for a tool call. */
  async sandboxAcquire<T>(a: { driver: string }, call: () => Promise<T>): Promise<T> {
    return this.timed(
      "keel.sandbox.acquire",
      { attributes: { "keel.sandbox.driver": a.driver } },
      () => call(),
      (outcome, s) => this.metrics.sandboxAcquire.observe({ driver: a.driver, outcome }, s),
    );
  }

  /** A child span of the active context around `call`, and its duration to `record`; errors mark both (by class name only). */
  private async timed<T>(
    name: string,
    opts: { kind?: SpanKind; attributes: Record<string, string | number> },
    call: (span: Span) => Promise<T>,
    record: (outcome: "ok" | "error", seconds: number) => void,
    ok: (r: T) => boolean = () => true,
  ): Promise<T> {
    const span = this.tracer.startSpan(name, opts);
    const started = performance.now();
    try {
      const r = await context.with(trace.setSpan(context.active(), span), () => call(span));
      const good = ok(r);
      record(good ? "ok" : "error", seconds(started));
      if (!good) span.setStatus({ code: SpanStatusCode.ERROR });
      return r;
    } catch (err) {
      record("error", seconds(started));
      span.setAttribute("error.type", err instanceof Error ? err.name : "unknown");
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  }
}
