// Step functions that drive the engine in tests (the agent loop is its own module).
import { eventPayload, type NewEvent, type StepContext, type StepFn } from "../src/engine/types.js";
import type { EncodedEvent } from "../src/engine/events.js";

// The engine is generic: its tests write synthetic event types ("step", "note") that the session
// contract does not know. Writers outside tests cannot (encodeEvent takes only contract types);
// readers show such events as unknown.
export const synthetic = (type: string, payload: unknown): NewEvent => ({ type, payload }) as unknown as NewEvent;
export const syntheticEncoded = (type: string, payloadText: string): EncodedEvent => ({ type, payloadText }) as unknown as EncodedEvent;

/** Counts its own `step` events in the log (so it resumes anywhere) and is done after `steps`. */
export function countingStep(opts: { steps: number; delayMs?: number; onStep?: (ctx: StepContext, n: number) => Promise<void> | void }): StepFn {
  return async (ctx) => {
    const events = await ctx.events();
    const done = events.filter((e) => e.type === "step" && e.runId === ctx.run.id).length;
    // Completion is read from the log, like the agent loop does: a worker that died after the
    // last append but before marking the run done must not add a step on resume.
    if (done >= opts.steps) return "done";
    const n = done + 1;
    await opts.onStep?.(ctx, n);
    if (opts.delayMs) await abortableSleep(opts.delayMs, ctx.signal);
    await ctx.append(synthetic("step", { n, worker: ctx.run.workerId, epoch: ctx.run.epoch.toString() }));
    return n >= opts.steps ? "done" : "continue";
  };
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export function stepNumbers(events: { type: string; payloadText: string; runId: string | null }[], runId: string): number[] {
  return events.filter((e) => e.type === "step" && e.runId === runId).map((e) => eventPayload<{ n: number }>(e as never).n);
}
