// What the loop needs to know about a session's agent: the pinned version's configuration.
import type { Queryable } from "../db/pool.js";
import { NotFoundError } from "../errors.js";
import type { AgentToolConfig } from "../tools/tools.js";

export type ProviderConfig = { kind?: "demo" | "openai-compatible"; baseUrl?: string; apiKeySecret?: string; maxRetries?: number; timeoutMs?: number };

export type AgentRuntimeConfig = {
  agentId: string;
  version: number;
  model: string;
  instructions: string;
  tools: AgentToolConfig[];
  provider: ProviderConfig;
  /** Unparsed: core/src/sandbox/policy.ts parses it (with its defaults) where it is used. */
  sandboxPolicy: unknown;
  mcpServers: McpServerRef[];
};

/** A remote MCP server an agent uses (Streamable HTTP), and which of its tools it may call. */
export type McpServerRef = { name: string; url: string; allowTools: string[]; headerSecrets?: Record<string, string>; headers?: Record<string, string> };

/**
 * An agent's MCP servers as the API shows them: legacy plain header values (configs written before
 * headerSecrets) are dropped, so no credential is readable back; secret names are not secret.
 */
export function viewMcpServers(servers: unknown): unknown[] {
  if (!Array.isArray(servers)) return [];
  return servers.map((s) => {
    if (!s || typeof s !== "object") return s;
    const { headers: _hidden, ...rest } = s as Record<string, unknown>;
    return rest;
  });
}

export async function loadAgentForSession(db: Queryable, sessionId: string): Promise<AgentRuntimeConfig> {
  const { rows } = await db.query<{
    agent_id: string;
    version: number;
    model: string;
    instructions: string;
    tools: AgentToolConfig[];
    provider: ProviderConfig;
    sandbox_policy: unknown;
    mcp_servers: McpServerRef[];
  }>(
    `SELECT av.agent_id, av.version, av.model, av.instructions, av.tools, av.provider, av.sandbox_policy, av.mcp_servers
     FROM sessions s JOIN agent_versions av ON av.agent_id = s.agent_id AND av.version = s.agent_version
     WHERE s.id = $1`,
    [sessionId],
  );
  const r = rows[0];
  if (!r) throw new NotFoundError("Session", sessionId);
  return {
    agentId: r.agent_id,
    version: r.version,
    model: r.model,
    instructions: r.instructions,
    tools: r.tools ?? [],
    provider: r.provider ?? {},
    sandboxPolicy: r.sandbox_policy ?? {},
    mcpServers: r.mcp_servers ?? [],
  };
}
