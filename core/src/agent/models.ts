// Picks the model client for an agent: the demo model, or an OpenAI-compatible provider.
// Clients are cached per base URL (each holds an HTTP agent with keep-alive).
import { PermanentStepError } from "../engine/types.js";
import type { AgentRuntimeConfig } from "./agent-config.js";
import { DEMO_MODEL, DemoModel } from "./demo-model.js";
import type { ModelClient } from "./model.js";
import { OpenAICompatibleModel } from "./openai-client.js";
import type { ModelResolver } from "./loop.js";

export type ModelDefaults = { openaiBaseUrl?: string; openaiApiKey?: string; maxRetries?: number; timeoutMs?: number };

export function createModelResolver(d: ModelDefaults): ModelResolver {
  const demo = new DemoModel();
  const cache = new Map<string, ModelClient>();
  return (agent: AgentRuntimeConfig) => {
    if (agent.provider.kind === "demo" || (agent.provider.kind === undefined && agent.model === DEMO_MODEL)) return demo;
    const baseUrl = agent.provider.baseUrl ?? d.openaiBaseUrl;
    if (!baseUrl) {
      // Retrying cannot fix configuration: fail the run at once with what to set.
      throw new PermanentStepError(`agent uses model "${agent.model}" but no provider is configured: set the agent's provider.baseUrl, or KEEL_OPENAI_BASE_URL on the workers (use model "demo" for the offline demo)`, "model_not_configured");
    }
    const maxRetries = agent.provider.maxRetries ?? d.maxRetries;
    const timeoutMs = agent.provider.timeoutMs ?? d.timeoutMs;
    const key = JSON.stringify([baseUrl, maxRetries, timeoutMs]);
    let client = cache.get(key);
    if (!client) cache.set(key, (client = new OpenAICompatibleModel({ baseUrl, apiKey: d.openaiApiKey ?? "", maxRetries, timeoutMs })));
    return client;
  };
}
