// An agent's MCP server entries: their shape and validation (shared by core/src/agent/mcp.ts at
// run time and agent config validation).
import { SECRET_NAME } from "../secrets.js";

export type McpServerConfig = {
  /** [a-z0-9_-]{1,32}; prefixes the server's tools (`${name}__${tool}`). */
  name: string;
  /** Streamable HTTP endpoint (http: or https:). */
  url: string;
  /** Exact MCP tool names the agent may use; empty = none. */
  allowTools: string[];
  /** Header name → name of the team secret holding its value (e.g. Authorization → GITHUB_MCP_AUTH). */
  headerSecrets?: Record<string, string>;
  /** Legacy plain values (configs written before headerSecrets); never returned by the API. Never logged. */
  headers?: Record<string, string>;
};

/** Which session a call is for: connections and caches never cross these. */
export type McpScope = { teamId: string; sessionId: string };

/** Team secrets (core/src/secrets.ts `Secrets.resolve`). */
export type SecretResolver = { resolve(teamId: string, names: readonly string[], destination?: string): Promise<Record<string, string>> };

const SERVER_NAME = /^[a-z0-9_-]{1,32}$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/;

/** What is wrong with one server entry, or null. Shared by `tools()` and config validation. */
export function mcpServerConfigProblem(s: McpServerConfig): string | null {
  if (typeof s?.name !== "string" || !SERVER_NAME.test(s.name)) {
    return `invalid MCP server name ${JSON.stringify(s?.name)}: use 1-32 characters a-z, 0-9, _ or -`;
  }
  let url: URL;
  try {
    url = new URL(s.url);
  } catch {
    return `MCP server ${s.name}: invalid url ${JSON.stringify(s.url)}`;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `MCP server ${s.name}: url must be http: or https:, not ${url.protocol}`;
  if (!Array.isArray(s.allowTools) || s.allowTools.some((t) => typeof t !== "string")) return `MCP server ${s.name}: allowTools must be a list of tool names`;
  if (s.headers !== undefined && (typeof s.headers !== "object" || s.headers === null || Object.values(s.headers).some((v) => typeof v !== "string"))) {
    return `MCP server ${s.name}: headers must map names to strings`;
  }
  if (s.headerSecrets !== undefined) {
    if (typeof s.headerSecrets !== "object" || s.headerSecrets === null) return `MCP server ${s.name}: headerSecrets must map header names to secret names`;
    for (const [h, secret] of Object.entries(s.headerSecrets)) {
      if (!HEADER_NAME.test(h)) return `MCP server ${s.name}: ${JSON.stringify(h)} is not a header name`;
      if (typeof secret !== "string" || !SECRET_NAME.test(secret))
        return `MCP server ${s.name}: header ${h} must name a team secret (UPPER_SNAKE_CASE), not ${JSON.stringify(secret)}`;
    }
  }
  return null;
}

/** Throws a clear error for the first invalid entry or a repeated name (for validating agent configs). */
export function assertValidMcpServers(servers: readonly McpServerConfig[]): void {
  const seen = new Set<string>();
  for (const s of servers) {
    const problem = mcpServerConfigProblem(s);
    if (problem) throw new Error(problem);
    if (seen.has(s.name)) throw new Error(`MCP server name ${s.name} is used twice`);
    seen.add(s.name);
  }
}
