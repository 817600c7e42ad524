// Tools of remote MCP servers (Streamable HTTP), offered to an agent as Keel tools named
// `${server}__${tool}`, filtered by the agent's per-server allow-list. Clients are cached per
// url+headers and reused across runs; tool lists are cached for `cacheMs`. A server that cannot be
// reached costs the agent that server's tools (reported in `errors`), never the run.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError, type CallToolResult, type Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../logger.js";
import type { Tool, ToolContext } from "./tools.js";
import { ANY_HOST, type OutboundPolicy } from "./outbound.js";

export type McpServerConfig = {
  /** [a-z0-9_-]{1,32}; prefixes the server's tools (`${name}__${tool}`). */
  name: string;
  /** Streamable HTTP endpoint (http: or https:). */
  url: string;
  /** Exact MCP tool names the agent may use; empty = none. */
  allowTools: string[];
  /** Sent with every request (e.g. Authorization). Never logged. */
  headers?: Record<string, string>;
};

export const MCP_TOOL_TIMEOUT_MS = 60_000;
const SERVER_NAME = /^[a-z0-9_-]{1,32}$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_LIST_PAGES = 50;

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

type Connection = {
  key: string;
  label: string;
  client: Promise<Client>;
  /** Connected once already: a failure now means a stale session or a restarted server. */
  connected: boolean;
  list?: { at: number; tools: Promise<McpTool[]> };
};

export class McpToolSource {
  private readonly logger: Logger;
  private readonly connectTimeoutMs: number;
  private readonly cacheMs: number;
  private readonly connections = new Map<string, Connection>();
  private readonly warned = new Set<string>();
  private readonly outbound: OutboundPolicy;
  private closed = false;

  constructor(o: { logger: Logger; connectTimeoutMs?: number; cacheMs?: number; outbound?: OutboundPolicy }) {
    this.logger = o.logger;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.cacheMs = o.cacheMs ?? 60_000;
    this.outbound = o.outbound ?? ANY_HOST;
  }

  private outboundProblem(s: McpServerConfig): string | null {
    const refused = this.outbound.refusal(s.url);
    return refused ? `MCP server ${s.name} cannot be used: ${refused}` : null;
  }

  /**
   * Tools of these servers that their allow-lists permit, as Keel Tools named
   * `${server.name}__${tool.name}`. A server that cannot be reached or listed (or is configured
   * wrongly) contributes no tools and is reported in `errors`; this never throws.
   */
  async tools(servers: McpServerConfig[]): Promise<{ tools: Tool[]; errors: { server: string; message: string }[] }> {
    const errors: { server: string; message: string }[] = [];
    const seen = new Set<string>();
    const valid: McpServerConfig[] = [];
    for (const s of servers) {
      const problem = this.closed ? "the MCP tool source is closed" : mcpServerConfigProblem(s) ?? this.outboundProblem(s);
      const server = typeof s?.name === "string" ? s.name : String(s?.name);
      if (problem) errors.push({ server, message: problem });
      else if (seen.has(s.name)) errors.push({ server, message: `MCP server name ${s.name} is used twice; the later entry is ignored` });
      else if (s.allowTools.length > 0) valid.push(s); // empty allow-list: nothing to offer, no need to connect
      seen.add(server);
    }
    const perServer = await Promise.all(
      valid.map(async (s) => {
        try {
          return { s, listed: await this.list(s) };
        } catch (err) {
          errors.push({ server: s.name, message: `MCP server ${s.name} unavailable: ${describe(err)}` });
          return { s, listed: [] as McpTool[] };
        }
      }),
    );
    const tools: Tool[] = [];
    for (const { s, listed } of perServer) {
      const allowed = new Set(s.allowTools);
      const offered = new Set<string>();
      for (const t of listed) {
        if (!allowed.has(t.name)) continue;
        offered.add(t.name);
        const name = `${s.name}__${t.name}`;
        if (!TOOL_NAME.test(name)) {
          errors.push({ server: s.name, message: `MCP tool ${t.name} cannot be offered: ${name} must be at most 64 characters a-z, A-Z, 0-9, _ or -` });
          continue;
        }
        tools.push(this.toTool(s, t, name));
      }
      for (const missing of s.allowTools.filter((t) => !offered.has(t))) {
        const k = `${s.name}\n${s.url}\n${missing}`;
        if (this.warned.has(k)) continue;
        this.warned.add(k);
        this.logger.warn({ server: s.name, tool: missing }, "allow-listed MCP tool not offered by the server");
      }
    }
    return { tools, errors };
  }

  async close(): Promise<void> {
    this.closed = true;
    const conns = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(conns.map((c) => this.dispose(c)));
  }

  private toTool(s: McpServerConfig, t: McpTool, name: string): Tool {
    return {
      name,
      description: t.description ?? t.title ?? t.annotations?.title ?? `${t.name} (MCP server ${s.name})`,
      parameters: t.inputSchema,
      idempotent: t.annotations?.idempotentHint === true || t.annotations?.readOnlyHint === true,
      requiresApproval: false, // the agent's tool config decides
      timeoutMs: MCP_TOOL_TIMEOUT_MS,
      run: (args, ctx) => this.call(s, t.name, args, ctx),
    };
  }

  private async call(s: McpServerConfig, tool: string, args: unknown, ctx: ToolContext): Promise<string> {
    if (this.closed) throw new Error(`MCP server ${s.name} unreachable: the MCP tool source is closed`);
    const params = { name: tool, arguments: (args && typeof args === "object" ? args : {}) as Record<string, unknown> };
    let result: CallToolResult;
    for (let attempt = 1; ; attempt++) {
      let conn: Connection | undefined;
      try {
        conn = this.connection(s);
        const client = await withAbort(conn.client, ctx.signal);
        result = (await client.callTool(params, undefined, { signal: ctx.signal, timeout: MCP_TOOL_TIMEOUT_MS })) as CallToolResult;
        break;
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
        if (err instanceof McpError) {
          if (err.code === ErrorCode.RequestTimeout) throw new Error(`MCP server ${s.name}: ${tool} did not answer within ${MCP_TOOL_TIMEOUT_MS} ms`);
          if (err.code !== ErrorCode.ConnectionClosed) throw new Error(`MCP server ${s.name}: ${tool} failed: ${err.message}`);
        }
        if (conn) this.evict(conn);
        // The server forgot our session (restarted, expired): the request never ran; once more on a new session.
        if (attempt === 1 && err instanceof StreamableHTTPError && err.code === 404) continue;
        throw new Error(`MCP server ${s.name} unreachable: ${describe(err)}`);
      }
    }
    const text = contentText(result);
    if (result.isError) throw new Error(text || `MCP tool ${tool} on server ${s.name} reported an error without a message`);
    if (result.structuredContent !== undefined) {
      const json = JSON.stringify(result.structuredContent);
      if (!text) return json;
      if (!sameJson(text, result.structuredContent)) return `${text}\n${json}`;
    }
    return text;
  }

  /**
   * The server's tool list, from cache while fresh. A failure is not cached: the next call tries
   * again. A cached connection that fails (server restarted, session expired) is replaced once.
   */
  private async list(s: McpServerConfig): Promise<McpTool[]> {
    const reused = this.connections.get(connectionKey(s).key)?.connected === true;
    try {
      return await this.listOnce(s);
    } catch (err) {
      if (!reused) throw err;
      return this.listOnce(s); // the failed connection was evicted: this one is new
    }
  }

  private async listOnce(s: McpServerConfig): Promise<McpTool[]> {
    const conn = this.connection(s);
    if (!conn.list || Date.now() - conn.list.at >= this.cacheMs) {
      const entry = { at: Date.now(), tools: this.fetchList(conn) };
      conn.list = entry;
      entry.tools.catch(() => {
        if (conn.list === entry) conn.list = undefined;
        this.evict(conn);
      });
    }
    return conn.list.tools;
  }

  private async fetchList(conn: Connection): Promise<McpTool[]> {
    const client = await conn.client;
    const out: McpTool[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const r = await client.listTools(cursor ? { cursor } : undefined, { timeout: this.connectTimeoutMs });
      out.push(...r.tools);
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  /** The cached connection for this url+headers, or a new one (connecting in the background). */
  private connection(s: McpServerConfig): Connection {
    const { key, headers } = connectionKey(s);
    const existing = this.connections.get(key);
    if (existing) return existing;
    const label = safeOrigin(s.url);
    const conn: Connection = { key, label, connected: false, client: this.connect(s, headers, label) };
    conn.client.then(() => (conn.connected = true), () => this.evict(conn));
    this.connections.set(key, conn);
    return conn;
  }

  private async connect(s: McpServerConfig, headers: Record<string, string>, label: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(s.url), {
      requestInit: { headers },
      // The standalone GET stream only carries server notifications we do not use: give up on it quickly.
      reconnectionOptions: { maxReconnectionDelay: 30_000, initialReconnectionDelay: 1_000, reconnectionDelayGrowFactor: 1.5, maxRetries: 2 },
    });
    const client = new Client({ name: "keel", version: "0.1.0" });
    client.onerror = (err) => this.logger.debug({ server: s.name, url: label, err: describe(err) }, "mcp transport error");
    try {
      await client.connect(transport, { timeout: this.connectTimeoutMs });
    } catch (err) {
      await client.close().catch(() => {});
      throw err;
    }
    this.logger.info({ server: s.name, url: label, serverVersion: client.getServerVersion() }, "mcp server connected");
    return client;
  }

  private evict(conn: Connection): void {
    if (this.connections.get(conn.key) !== conn) return;
    this.connections.delete(conn.key);
    void this.dispose(conn);
  }

  private async dispose(conn: Connection): Promise<void> {
    const client = await conn.client.catch(() => null);
    if (!client) return;
    const transport = client.transport;
    if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) {
      // Best effort: tell a stateful server the session is over, without waiting long for it.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([transport.terminateSession().catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, Math.min(this.connectTimeoutMs, 2_000))))]);
      clearTimeout(timer);
    }
    await client.close().catch(() => {});
  }
}

function connectionKey(s: McpServerConfig): { key: string; headers: Record<string, string> } {
  const entries = Object.entries(s.headers ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { key: `${s.url}\n${JSON.stringify(entries)}`, headers: Object.fromEntries(entries) };
}

function contentText(result: CallToolResult): string {
  const parts: string[] = [];
  for (const c of result.content ?? []) {
    if (c.type === "text") parts.push(c.text);
    else if (c.type === "resource") parts.push("text" in c.resource ? c.resource.text : `[resource ${c.resource.uri}]`);
    else if (c.type === "resource_link") parts.push(`[resource ${c.uri}]`);
    else parts.push(`[${c.type}${"mimeType" in c ? ` ${String(c.mimeType)}` : ""}]`);
  }
  return parts.join("\n");
}

function sameJson(text: string, value: unknown): boolean {
  try {
    return JSON.stringify(JSON.parse(text)) === JSON.stringify(value);
  } catch {
    return false;
  }
}

/** An error's message with its causes ("fetch failed: connect ECONNREFUSED 127.0.0.1:1"). */
function describe(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const msg = e instanceof Error ? e.message || e.name : String(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(": ") || "unknown error";
}

/** Scheme, host and port only: paths and query strings may carry tokens. */
function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid url)";
  }
}

function withAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
