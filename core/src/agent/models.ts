// Picks the model client for an agent: the demo model, or an OpenAI-compatible provider.
// Clients are cached per base URL, key and limits (each holds an HTTP agent with keep-alive).
//
// Which API key goes where: the workers' key (KEEL_OPENAI_API_KEY) only ever goes to the workers'
// provider (KEEL_OPENAI_BASE_URL). An agent that names its own base URL names its own key too, as a
// team secret (provider.apiKeySecret); without one it sends none. Otherwise any team could point an
// agent at a server of its choosing and collect the operator's key.
import { createHash } from "node:crypto";
import { PermanentStepError } from "../engine/types.js";
import { KeelError } from "../errors.js";
import type { AgentRuntimeConfig } from "./agent-config.js";
import { DEMO_MODEL, DemoModel } from "./demo-model.js";
import type { ModelClient } from "./model.js";
import { OpenAICompatibleModel } from "./openai-client.js";
import type { ModelResolver } from "./loop.js";
import { outboundPolicy, type OutboundPolicy } from "./outbound.js";

export type ModelDefaults = {
  openaiBaseUrl?: string;
  openaiApiKey?: string;
  maxRetries?: number;
  timeoutMs?: number;
  /** The team's secrets (core/src/secrets.ts), for provider.apiKeySecret. */
  secrets?: { resolve(teamId: string, names: readonly string[], destination?: string): Promise<Record<string, string>> };
  /**
   * Where an agent's own provider.baseUrl may lead (core/src/agent/outbound.ts). Default: public
   * hosts only; tests and operators with an internal provider list it explicitly.
   */
  outbound?: OutboundPolicy;
};

const MAX_CACHED_CLIENTS = 256;

export function createModelResolver(d: ModelDefaults): ModelResolver {
  const demo = new DemoModel();
  const outbound = d.outbound ?? outboundPolicy({ trusted: [d.openaiBaseUrl] });
  const cache = new Map<string, ModelClient>();

  async function apiKeyFor(agent: AgentRuntimeConfig, teamId: string, baseUrl: string): Promise<string> {
    const name = agent.provider.apiKeySecret;
    if (name === undefined) {
      const ownProvider = agent.provider.baseUrl !== undefined && agent.provider.baseUrl !== d.openaiBaseUrl;
      return ownProvider ? "" : (d.openaiApiKey ?? "");
    }
    const unusable = (why: string) => new PermanentStepError(`the agent's provider.apiKeySecret names the secret ${name}, ${why}`, "model_not_configured");
    if (!d.secrets) throw unusable("but this worker has no access to secrets");
    let values: Record<string, string>;
    try {
      values = await d.secrets.resolve(teamId, [name], baseUrl); // a secret bound to other hosts is refused
    } catch (err) {
      // No KEEL_SECRETS_KEY on the worker, or a value that does not decrypt: configuration, not luck.
      if (err instanceof KeelError) throw unusable(`which cannot be read: ${err.message}`);
      throw err;
    }
    const value = values[name];
    if (value === undefined) throw unusable("which this team has not set (Settings → Secrets)");
    return value;
  }

  return async (agent: AgentRuntimeConfig, teamId: string) => {
    if (agent.provider.kind === "demo" || (agent.provider.kind === undefined && agent.model === DEMO_MODEL)) return demo;
    const baseUrl = agent.provider.baseUrl ?? d.openaiBaseUrl;
    if (!baseUrl) {
      // Retrying cannot fix configuration: fail the run at once with what to set.
      throw new PermanentStepError(
        `agent uses model "${agent.model}" but no provider is configured: set the agent's provider.baseUrl, or KEEL_OPENAI_BASE_URL on the workers (use model "demo" for the offline demo)`,
        "model_not_configured",
      );
    }
    // The agent's own URL: checked now (resolved, for a clear reason at once) and again on every
    // connection (the policy's fetch pins the checked addresses).
    const own = agent.provider.baseUrl !== undefined && agent.provider.baseUrl !== d.openaiBaseUrl;
    const refused = own ? await outbound.check(baseUrl) : null;
    if (refused) throw new PermanentStepError(`the agent's provider.baseUrl cannot be used: ${refused}`, "outbound_not_allowed");
    const apiKey = await apiKeyFor(agent, teamId, baseUrl);
    const maxRetries = agent.provider.maxRetries ?? d.maxRetries;
    const timeoutMs = agent.provider.timeoutMs ?? d.timeoutMs;
    const key = JSON.stringify([baseUrl, createHash("sha256").update(apiKey).digest("base64"), maxRetries, timeoutMs, own]);
    let client = cache.get(key);
    if (!client) {
      if (cache.size >= MAX_CACHED_CLIENTS) cache.delete(cache.keys().next().value!);
      cache.set(key, (client = new OpenAICompatibleModel({ baseUrl, apiKey, maxRetries, timeoutMs, ...(own ? { fetch: outbound.fetch } : {}) })));
    }
    return client;
  };
}
