// The agent loop as an engine step: each call does one thing (one model call, or one tool call)
// and persists it before returning, so any worker can continue from the log alone.
import { ValidationError } from "../errors.js";
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { parseEventText, type PayloadOf, type ToolResultState } from "../contract/events.js";
import {
  ledgerKey,
  PermanentStepError,
  type ClaimedRun,
  type SessionEvent,
  type StepContext,
  type StepFn,
  type StepOutcome,
  type ToolCallState,
} from "../engine/types.js";
import { loadAgentForSession, type AgentRuntimeConfig, type McpServerRef } from "./agent-config.js";
import { AgentEventType, buildContext, type AgentContext, type PendingCall, type ToolResultPayload } from "./context.js";
import type { DeltaSink, ModelClient } from "./model.js";
import { ModelCallError } from "./openai-client.js";
import { toolSpecs, type ResolvedTool, type Tool, type ToolContext, type ToolRegistry } from "../tools/tools.js";
import { noTelemetry, type EngineTelemetry } from "../telemetry/hooks.js";

/** The model client for an agent of a team (its key may be a team secret, hence async). */
export type ModelResolver = (agent: AgentRuntimeConfig, teamId: string) => Promise<ModelClient>;

/** Seams for tests: kill or pause the worker at an exact step boundary. */
export type LoopHooks = {
  beforeModel?: (run: ClaimedRun) => Promise<void> | void;
  afterModel?: (run: ClaimedRun) => Promise<void> | void;
  beforeTool?: (run: ClaimedRun, callId: string) => Promise<void> | void;
  afterTool?: (run: ClaimedRun, callId: string) => Promise<void> | void;
};

export type AgentLoopOptions = {
  /** For reading the agent's config only: every write goes through the step's fenced context. */
  pool: Pool;
  tools: ToolRegistry;
  models: ModelResolver;
  logger: Logger;
  /** Model calls one run may make; past it the run fails (an endless tool loop ends here). */
  maxModelCallsPerRun?: number;
  maxToolOutputBytes?: number;
  /** Largest assistant item stored; the worker's limit (ctx.maxEventBytes) unless set lower here. */
  maxEventBytes?: number;
  /** Live token deltas (ephemeral; not stored). */
  onDelta?: ((run: ClaimedRun, delta: Parameters<DeltaSink>[0]) => void) & { flush?: (run: ClaimedRun) => Promise<void> };
  hooks?: LoopHooks;
  /** Model and tool call figures and spans (the worker's; default: recorded nowhere). */
  telemetry?: EngineTelemetry;
  /** Tools of the agent's remote MCP servers (core/src/agent/mcp.ts). */
  mcp?: {
    tools(servers: McpServerRef[], scope: { teamId: string; sessionId: string }): Promise<{ tools: Tool[]; errors: { server: string; message: string }[] }>;
  };
};

export function createAgentStep(o: AgentLoopOptions): StepFn {
  const maxCalls = o.maxModelCallsPerRun ?? 25;
  const maxToolBytes = o.maxToolOutputBytes ?? 64 * 1024;
  const telemetry = o.telemetry ?? noTelemetry;

  return async (ctx: StepContext): Promise<StepOutcome> => {
    const agent = await loadAgentForSession(o.pool, ctx.run.sessionId);
    const events = await ctx.events();
    const context = buildContext(events, agent.instructions);
    await recordNewRepairs(ctx, context, events);
    const tools = o.tools.forAgent(agent.tools, await remoteTools(ctx.run, agent));
    switch (context.next) {
      case "done":
        return "done";
      case "tools":
        return toolStep(ctx, context, tools, events);
      case "model":
        return modelStep(ctx, context, tools, agent, events);
      default: {
        const never: never = context.next;
        throw new Error(`unexpected next step ${String(never)}`);
      }
    }
  };

  /** An unreachable MCP server costs the agent its tools for this step, visibly, not the run. */
  async function remoteTools(run: ClaimedRun, agent: AgentRuntimeConfig): Promise<Tool[]> {
    if (!o.mcp || agent.mcpServers.length === 0) return [];
    const { tools, errors } = await o.mcp.tools(agent.mcpServers, { teamId: run.teamId, sessionId: run.sessionId });
    for (const e of errors) o.logger.warn({ runId: run.id, server: e.server, err: e.message }, "mcp tools unavailable");
    return tools;
  }

  async function recordNewRepairs(ctx: StepContext, context: AgentContext, events: readonly SessionEvent[]): Promise<void> {
    if (context.repairs.length === 0) return;
    const seen = new Set(
      events.flatMap((e) => {
        const p = e.type === AgentEventType.contextRepaired ? parseEventText(e.type, e.payloadText) : null;
        return p?.known && p.type === "context_repaired" ? p.payload.repairs.map((r) => `${r.kind}:${r.seq}`) : [];
      }),
    );
    const fresh = context.repairs.filter((r) => !seen.has(`${r.kind}:${r.seq}`));
    if (fresh.length > 0) await ctx.append({ type: AgentEventType.contextRepaired, payload: { repairs: fresh } });
  }

  async function modelStep(
    ctx: StepContext,
    context: AgentContext,
    tools: Map<string, ResolvedTool>,
    agent: AgentRuntimeConfig,
    events: readonly SessionEvent[],
  ): Promise<StepOutcome> {
    const { run } = ctx;
    const calls = events.filter((e) => e.type === AgentEventType.assistantMessage && e.runId === run.id).length;
    if (calls >= maxCalls) {
      const message = `the agent made ${calls} model calls in this run without finishing (limit ${maxCalls})`;
      await ctx.append({ type: AgentEventType.modelError, payload: { code: "step_limit", message } });
      throw new PermanentStepError(message, "step_limit");
    }
    await o.hooks?.beforeModel?.(run);
    let result;
    try {
      const model = await o.models(agent, run.teamId);
      result = await telemetry.modelCall({ model: agent.model }, (delta) =>
        model.complete({ model: agent.model, messages: context.messages, tools: toolSpecs(tools), signal: ctx.signal }, (d) => {
          delta();
          o.onDelta?.(run, d);
        }),
      );
    } catch (err) {
      if (ctx.signal.aborted) throw err; // shutting down: not the model's fault
      const retryable = err instanceof ModelCallError && err.retryable;
      await ctx.append({
        type: AgentEventType.modelError,
        payload: { code: retryable ? "model_unavailable" : "model_rejected", message: (err as Error).message, retryable },
      });
      throw err;
    }
    const m = result.message;
    if (!m.tool_calls?.length && !m.content && !Object.keys(m).some((k) => /reason|think/.test(k))) {
      await ctx.append({
        type: AgentEventType.modelError,
        payload: { code: "empty_response", message: "the model returned neither text nor tool calls", retryable: true },
      });
      throw new ModelCallError("the model returned an empty response", true);
    }
    const item: PayloadOf<"assistant_message"> = { message: m, model: result.model, finishReason: result.finishReason, usage: result.usage };
    const payloadText = JSON.stringify(item);
    const maxEventBytes = Math.min(o.maxEventBytes ?? ctx.maxEventBytes, ctx.maxEventBytes);
    if (Buffer.byteLength(payloadText) > maxEventBytes) {
      const message = `the model's reply is ${Buffer.byteLength(payloadText)} bytes; the limit is ${maxEventBytes}`;
      await ctx.append({ type: AgentEventType.modelError, payload: { code: "output_too_large", message } });
      throw new PermanentStepError(message, "output_too_large");
    }
    await o.onDelta?.flush?.(run); // the call's last delta goes out before the item that replaces the draft
    const intents = (m.tool_calls ?? []).map((c) => ({ callId: c.id, name: c.function.name, arguments: c.function.arguments }));
    await ctx.ledger.recordModelReply({ event: { type: AgentEventType.assistantMessage, payloadText }, calls: intents, usage: result.usage });
    await o.hooks?.afterModel?.(run);
    return m.tool_calls?.length ? "continue" : "done";
  }

  async function toolStep(ctx: StepContext, context: AgentContext, tools: Map<string, ResolvedTool>, events: readonly SessionEvent[]): Promise<StepOutcome> {
    const { run } = ctx;
    const first = context.pending[0]!;
    if (first.interruptedByUser) {
      for (const p of context.pending) {
        await finish(ctx, p, "failed", "Not run: the user sent a new message before this tool call ran.", true);
      }
      return "continue";
    }
    const p = first;
    const key = ledgerKey(p.assistantRunId, p.call.id);
    const ledger = await ctx.ledger.get(key);
    const resolved = tools.get(p.call.function.name);
    if (ledger && (ledger.state === "succeeded" || ledger.state === "failed" || ledger.state === "indeterminate")) {
      // Recorded with its event in one transaction, so this is a repair of an older log.
      await finish(ctx, p, ledger.state, ledger.result ? (JSON.parse(ledger.result) as string) : "", ledger.state !== "succeeded", key);
      return "continue";
    }
    if (!resolved) {
      const available = [...tools.keys()].join(", ") || "none";
      await finish(ctx, p, "failed", `Error: unknown tool "${p.call.function.name}". Available tools: ${available}.`, true, key);
      return "continue";
    }
    let args: unknown;
    try {
      args = p.call.function.arguments.trim() === "" ? {} : JSON.parse(p.call.function.arguments);
    } catch (err) {
      await finish(ctx, p, "failed", `Error: the arguments are not valid JSON (${(err as Error).message}). Call the tool again with a JSON object.`, true, key);
      return "continue";
    }
    if (!resolved.validate(args)) {
      const why = (resolved.validate.errors ?? []).map((e) => `${e.instancePath || "arguments"} ${e.message}`).join("; ");
      await finish(ctx, p, "failed", `Error: invalid arguments for ${resolved.tool.name}: ${why}.`, true, key);
      return "continue";
    }
    if (resolved.requiresApproval && ledger?.approval !== "approved") {
      if (ledger?.approval === "denied") {
        await finish(ctx, p, "failed", `Not run: a human denied this call${ledger.approvalReason ? `: ${ledger.approvalReason}` : "."}`, true, key);
        return "continue";
      }
      const asked = events.some((e) => {
        const a = e.type === AgentEventType.approvalRequested ? parseEventText(e.type, e.payloadText) : null;
        return a?.known && a.type === "approval_requested" && a.payload.callId === p.call.id;
      });
      if (!asked)
        await ctx.append({
          type: AgentEventType.approvalRequested,
          payload: { callId: p.call.id, name: p.call.function.name, arguments: p.call.function.arguments },
        });
      return "waiting_approval";
    }
    if (ledger?.state === "started" && !resolved.tool.idempotent) {
      await finish(
        ctx,
        p,
        "indeterminate",
        `The call to ${resolved.tool.name} was interrupted (the worker running it stopped) and may or may not have taken effect. ` +
          `It was not run again because it is not idempotent. Check its effect before calling it again.`,
        true,
        key,
      );
      return "continue";
    }
    await o.hooks?.beforeTool?.(run, p.call.id);
    // From here a crash leaves "started": a non-idempotent tool is then reported indeterminate.
    await ctx.ledger.markStarted(key);
    const toolCtx = { signal: ctx.signal, idempotencyKey: key, teamId: run.teamId, sessionId: run.sessionId, runId: run.id, epoch: run.epoch };
    const outcome = await telemetry.toolCall(
      { tool: resolved.tool.name, callId: p.call.id },
      () => runTool(resolved, args, toolCtx),
      (r) => r.ok,
    );
    if (ctx.signal.aborted) throw ctx.signal.reason; // shutting down mid-tool: the ledger says "started"
    await finish(ctx, p, outcome.ok ? "succeeded" : "failed", capOutput(outcome.text, maxToolBytes), !outcome.ok, key);
    await o.hooks?.afterTool?.(run, p.call.id);
    return "continue";
  }

  async function finish(ctx: StepContext, p: PendingCall, state: ToolResultState, content: string, isError: boolean, key: string | null = null): Promise<void> {
    const payload: ToolResultPayload = { tool_call_id: p.call.id, name: p.call.function.name, content, isError, state };
    await ctx.ledger.recordResult(key, { state, result: content }, { type: AgentEventType.toolResult, payload });
  }
}

async function runTool(r: ResolvedTool, args: unknown, ctx: ToolContext): Promise<{ ok: boolean; text: string }> {
  const ac = new AbortController();
  const onAbort = () => ac.abort(ctx.signal.reason);
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // One reason for both: a tool that honours its signal rejects with it, possibly first.
        const err = new Error(`the tool did not finish within ${r.tool.timeoutMs} ms`);
        reject(err);
        ac.abort(err);
      }, r.tool.timeoutMs);
    });
    const value = await Promise.race([r.tool.run(args, { ...ctx, signal: ac.signal }), timeout]);
    return { ok: true, text: typeof value === "string" ? value : JSON.stringify(value ?? null) };
  } catch (err) {
    return { ok: false, text: `Error: ${err instanceof ValidationError ? err.message : ((err as Error)?.message ?? String(err))}` };
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onAbort);
  }
}

/** Caps tool output at maxBytes (UTF-8) and tells the model what it is not seeing. */
export function capOutput(text: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  const head = Buffer.from(text)
    .subarray(0, maxBytes)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return `${head}\n[output truncated: ${bytes} bytes in all, the first ${Buffer.byteLength(head)} shown]`;
}
