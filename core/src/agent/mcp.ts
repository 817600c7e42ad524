// Tools of remote MCP servers (Streamable HTTP), offered to an agent as Keel tools named
// `${server}__${tool}`, filtered by the agent's per-server allow-list. A server that cannot be
// reached costs the agent that server's tools (reported in `errors`), never the run.
//
// Isolation: an MCP server may keep state per MCP session (notes, open files, a login), so a
// client session is never shared between Keel sessions, let alone teams: tool calls use a
// connection keyed by team + Keel session + url + headers; tool lists are cached per team + url +
// headers for `cacheMs`. Idle connections are closed after `idleMs`.
//
// Credentials: `headerSecrets` maps a header to the name of a team secret, resolved here (by the
// worker) for that team only; agent configs hold names, never values. Plain `headers` are read
// only from configs written before that rule (core/src/agent/mcp-headers.ts migrates them).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport, StreamableHTTPError } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError, type CallToolResult, type Tool as McpTool } from "@modelcontextprotocol/sdk/types.js";
import { createHash } from "node:crypto";
import type { Logger } from "../logger.js";
import { mcpServerConfigProblem, type McpScope, type McpServerConfig, type SecretResolver } from "./mcp-config.js";
import type { Tool, ToolContext } from "../tools/tools.js";

export { assertValidMcpServers, mcpServerConfigProblem, type McpScope, type McpServerConfig, type SecretResolver } from "./mcp-config.js";
import { clipRemoteText as clip, outboundPolicy, outboundRefusalIn, type OutboundPolicy } from "./outbound.js";

export const MCP_TOOL_TIMEOUT_MS = 60_000;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_LIST_PAGES = 50;

type Connection = {
  key: string;
  label: string;
  client: Promise<Client>;
  /** Connected once already: a failure now means a stale session or a restarted server. */
  connected: boolean;
  usedAt: number;
  list?: { at: number; tools: Promise<McpTool[]> };
};

/** A server entry with its headers resolved for one team. */
type Resolved = { s: McpServerConfig; headers: Record<string, string>; headersHash: string };

/** The session part of the key for connections that only list tools (shared by a team's sessions). */
const LISTING = "(tool list)";

export class McpToolSource {
  private readonly logger: Logger;
  private readonly connectTimeoutMs: number;
  private readonly cacheMs: number;
  private readonly connections = new Map<string, Connection>();
  private readonly warned = new Set<string>();
  private readonly outbound: OutboundPolicy;
  private readonly secrets: SecretResolver | undefined;
  private readonly idleMs: number;
  private readonly maxConnections: number;
  private closed = false;

  /** `outbound` defaults to public hosts only (core/src/agent/outbound.ts); `secrets` resolves headerSecrets. */
  constructor(o: {
    logger: Logger;
    connectTimeoutMs?: number;
    cacheMs?: number;
    idleMs?: number;
    maxConnections?: number;
    outbound?: OutboundPolicy;
    secrets?: SecretResolver;
  }) {
    this.logger = o.logger;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.cacheMs = o.cacheMs ?? 60_000;
    this.idleMs = o.idleMs ?? 300_000;
    this.maxConnections = o.maxConnections ?? 512;
    this.outbound = o.outbound ?? outboundPolicy();
    this.secrets = o.secrets;
  }

  private async outboundProblem(s: McpServerConfig): Promise<string | null> {
    const refused = await this.outbound.check(s.url);
    return refused ? `MCP server ${s.name} cannot be used: ${refused}` : null;
  }

  /** The server's headers for this team: legacy plain values, then the named team secrets. */
  private async resolveHeaders(s: McpServerConfig, teamId: string): Promise<Resolved> {
    const named = Object.entries(s.headerSecrets ?? {});
    const headers: Record<string, string> = { ...(s.headers ?? {}) };
    if (named.length > 0) {
      if (!this.secrets)
        throw new Error(`MCP server ${s.name} needs team secrets for its headers, but this worker has no access to secrets (KEEL_SECRETS_KEY)`);
      const values = await this.secrets.resolve(
        teamId,
        named.map(([, secret]) => secret),
        s.url,
      ); // bound secrets: only to their hosts
      for (const [h, secret] of named) {
        const v = values[secret];
        if (v === undefined) throw new Error(`MCP server ${s.name}: header ${h} names the secret ${secret}, which this team has not set (Settings → Secrets)`);
        headers[h] = v;
      }
    }
    const entries = Object.entries(headers).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // A digest, not the values, goes into cache keys (keys are compared and kept, never logged, but need not hold secrets).
    return { s, headers: Object.fromEntries(entries), headersHash: createHash("sha256").update(JSON.stringify(entries)).digest("base64") };
  }

  /**
   * Tools of these servers that their allow-lists permit, as Keel Tools named
   * `${server.name}__${tool.name}`. A server that cannot be reached or listed (or is configured
   * wrongly) contributes no tools and is reported in `errors`; this never throws.
   */
  async tools(servers: McpServerConfig[], scope: McpScope): Promise<{ tools: Tool[]; errors: { server: string; message: string }[] }> {
    const errors: { server: string; message: string }[] = [];
    const seen = new Set<string>();
    const valid: McpServerConfig[] = [];
    for (const s of servers) {
      const problem = this.closed ? "the MCP tool source is closed" : mcpServerConfigProblem(s);
      const server = typeof s?.name === "string" ? s.name : String(s?.name);
      if (problem) errors.push({ server, message: problem });
      else if (seen.has(s.name)) errors.push({ server, message: `MCP server name ${s.name} is used twice; the later entry is ignored` });
      else if (s.allowTools.length > 0) valid.push(s); // empty allow-list: nothing to offer, no need to connect
      seen.add(server);
    }
    const perServer = await Promise.all(
      valid.map(async (s) => {
        const refused = await this.outboundProblem(s);
        if (refused) {
          errors.push({ server: s.name, message: refused });
          return null;
        }
        try {
          const r = await this.resolveHeaders(s, scope.teamId);
          return { r, listed: await this.list(r, scope.teamId) };
        } catch (err) {
          errors.push({ server: s.name, message: `MCP server ${s.name} unavailable: ${describe(err)}` });
          return null;
        }
      }),
    );
    const tools: Tool[] = [];
    for (const entry of perServer) {
      if (!entry) continue;
      const { r, listed } = entry;
      const s = r.s;
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
        tools.push(this.toTool(r, scope, t, name));
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

  private toTool(r: Resolved, scope: McpScope, t: McpTool, name: string): Tool {
    const s = r.s;
    return {
      name,
      description: t.description ?? t.title ?? t.annotations?.title ?? `${t.name} (MCP server ${s.name})`,
      parameters: t.inputSchema,
      idempotent: t.annotations?.idempotentHint === true || t.annotations?.readOnlyHint === true,
      requiresApproval: false, // the agent's tool config decides
      timeoutMs: MCP_TOOL_TIMEOUT_MS,
      run: (args, ctx) => this.call(r, scope, t.name, args, ctx),
    };
  }

  private async call(r: Resolved, scope: McpScope, tool: string, args: unknown, ctx: ToolContext): Promise<string> {
    const s = r.s;
    if (this.closed) throw new Error(`MCP server ${s.name} unreachable: the MCP tool source is closed`);
    // A tool is bound to the session it was listed for: a call for another one is a bug, refused.
    if (ctx.teamId !== scope.teamId || ctx.sessionId !== scope.sessionId) throw new Error(`MCP server ${s.name}: this tool was offered to another session`);
    const params = { name: tool, arguments: (args && typeof args === "object" ? args : {}) as Record<string, unknown> };
    let result: CallToolResult;
    for (let attempt = 1; ; attempt++) {
      let conn: Connection | undefined;
      try {
        conn = this.connection(r, scope.teamId, scope.sessionId);
        const client = await withAbort(conn.client, ctx.signal);
        result = (await client.callTool(params, undefined, { signal: ctx.signal, timeout: MCP_TOOL_TIMEOUT_MS })) as CallToolResult;
        break;
      } catch (err) {
        if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
        if (err instanceof McpError) {
          if (err.code === ErrorCode.RequestTimeout) throw new Error(`MCP server ${s.name}: ${tool} did not answer within ${MCP_TOOL_TIMEOUT_MS} ms`);
          if (err.code !== ErrorCode.ConnectionClosed) throw new Error(`MCP server ${s.name}: ${tool} failed: ${clip(err.message)}`);
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
  private async list(r: Resolved, teamId: string): Promise<McpTool[]> {
    const reused = this.connections.get(connectionKey(r, teamId, LISTING))?.connected === true;
    try {
      return await this.listOnce(r, teamId);
    } catch (err) {
      if (!reused) throw err;
      return this.listOnce(r, teamId); // the failed connection was evicted: this one is new
    }
  }

  private async listOnce(r: Resolved, teamId: string): Promise<McpTool[]> {
    const conn = this.connection(r, teamId, LISTING);
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

  /** The cached connection of this team and session for this url+headers, or a new one (connecting in the background). */
  private connection(r: Resolved, teamId: string, sessionId: string): Connection {
    const key = connectionKey(r, teamId, sessionId);
    const now = Date.now();
    const existing = this.connections.get(key);
    if (existing) {
      existing.usedAt = now;
      // Most recently used last: the Map's order is the eviction order.
      this.connections.delete(key);
      this.connections.set(key, existing);
      return existing;
    }
    for (const c of this.connections.values()) {
      if (this.connections.size < this.maxConnections && now - c.usedAt < this.idleMs) break;
      this.evict(c);
    }
    const label = safeOrigin(r.s.url);
    const conn: Connection = { key, label, connected: false, usedAt: now, client: this.connect(r.s, r.headers, label) };
    conn.client.then(
      () => (conn.connected = true),
      () => this.evict(conn),
    );
    this.connections.set(key, conn);
    return conn;
  }

  private async connect(s: McpServerConfig, headers: Record<string, string>, label: string): Promise<Client> {
    const transport = new StreamableHTTPClientTransport(new URL(s.url), {
      requestInit: { headers },
      // Every connection goes through the outbound policy, pinned to the addresses it checked.
      fetch: this.outbound.fetch,
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
      await Promise.race([
        transport.terminateSession().catch(() => {}),
        new Promise<void>((r) => (timer = setTimeout(r, Math.min(this.connectTimeoutMs, 2_000)))),
      ]);
      clearTimeout(timer);
    }
    await client.close().catch(() => {});
  }
}

function connectionKey(r: Resolved, teamId: string, sessionId: string): string {
  return JSON.stringify([teamId, sessionId, r.s.url, r.headersHash]);
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

/** An error's message with its causes ("fetch failed: connect ECONNREFUSED 127.0.0.1:1"), clipped. */
function describe(err: unknown): string {
  const refused = outboundRefusalIn(err);
  if (refused) return refused.message;
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const msg = e instanceof Error ? e.message || e.name : String(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = e instanceof Error ? e.cause : undefined;
  }
  return clip(parts.join(": ") || "unknown error");
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
