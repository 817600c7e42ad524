// Remote MCP tools (core/src/agent/mcp.ts) against a real MCP server on loopback (the official SDK's
// McpServer + StreamableHTTPServerTransport): allow-lists, prefixes, results, errors, cancellation.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { assertValidMcpServers, McpToolSource, type McpServerConfig } from "../src/agent/mcp.js";
import type { Tool, ToolContext } from "../src/agent/tools.js";
import { silentLogger } from "../src/logger.js";
import { outboundPolicy, type OutboundPolicy } from "../src/agent/outbound.js";
import { closedPortUrl, startTestMcpServer, type TestMcpServer } from "./support/mcp-server.js";

let server: TestMcpServer;
const sources: McpToolSource[] = [];

beforeAll(async () => {
  server = await startTestMcpServer();
});
afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await server.close();
});

function source(o: { connectTimeoutMs?: number; cacheMs?: number; outbound?: OutboundPolicy } = {}): McpToolSource {
  const s = new McpToolSource({ logger: silentLogger, ...o });
  sources.push(s);
  return s;
}

function ctx(signal: AbortSignal = new AbortController().signal): ToolContext {
  return { signal, idempotencyKey: "k1", teamId: "t1", sessionId: "s1", runId: "r1", epoch: 1n };
}

function byName(tools: Tool[], name: string): Tool {
  const t = tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name} in ${tools.map((x) => x.name).join(", ")}`);
  return t;
}

const calc = (): McpServerConfig => ({ name: "calc", url: server.url, allowTools: ["add", "fail", "stats", "slow"], headers: { Authorization: "Bearer test-token" } });

describe("McpToolSource", () => {
  it("offers only allow-listed tools, prefixed with the server name, with the server's schema and hints", async () => {
    const { tools, errors } = await source().tools([calc()]);
    expect(errors).toEqual([]);
    expect(tools.map((t) => t.name).sort()).toEqual(["calc__add", "calc__fail", "calc__slow", "calc__stats"]);
    expect(tools.some((t) => t.name.includes("secret_op"))).toBe(false);

    const add = byName(tools, "calc__add");
    expect(add.description).toBe("Adds two numbers.");
    expect(add.parameters).toMatchObject({ type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] });
    expect(add).toMatchObject({ idempotent: true, requiresApproval: false, timeoutMs: 60_000 });
    expect(byName(tools, "calc__stats").idempotent).toBe(true); // readOnlyHint
    expect(byName(tools, "calc__fail").idempotent).toBe(false);
  });

  it("a server whose host KEEL_OUTBOUND_HOSTS does not list is refused by name, never contacted; a listed one works", async () => {
    const port = new URL(server.url).port;
    const before = server.methods.length;
    const refused = await source({ outbound: outboundPolicy(["api.openai.com", "127.0.0.1:1"]) }).tools([calc()]);
    expect(refused.tools).toEqual([]);
    expect(refused.errors).toEqual([{ server: "calc", message: `MCP server calc cannot be used: 127.0.0.1:${port} is not among the hosts this Keel's workers may call (KEEL_OUTBOUND_HOSTS: api.openai.com, 127.0.0.1:1)` }]);
    expect(server.methods.length).toBe(before);
    const allowed = await source({ outbound: outboundPolicy([`127.0.0.1:${port}`]) }).tools([calc()]);
    expect(allowed.errors).toEqual([]);
    expect(allowed.tools.map((t) => t.name)).toContain("calc__add");
  });

  it("a tool the server has but the allow-list omits is absent; an empty allow-list offers nothing", async () => {
    const src = source();
    const some = await src.tools([{ name: "calc", url: server.url, allowTools: ["add", "nonexistent"] }]);
    expect(some.tools.map((t) => t.name)).toEqual(["calc__add"]);
    const none = await src.tools([{ name: "calc", url: server.url, allowTools: [] }]);
    expect(none).toEqual({ tools: [], errors: [] });
  });

  it("runs a tool over MCP and returns its text, sending the configured headers", async () => {
    const { tools } = await source().tools([calc()]);
    await expect(byName(tools, "calc__add").run({ a: 2, b: 3 }, ctx())).resolves.toBe("5");
    expect(server.authorizations.at(-1)).toBe("Bearer test-token");
  });

  it("a tool result with isError throws the server's message", async () => {
    const { tools } = await source().tools([calc()]);
    await expect(byName(tools, "calc__fail").run({ why: "gear slipped" }, ctx())).rejects.toThrow("widget broken: gear slipped");
  });

  it("appends structuredContent as JSON to the text", async () => {
    const { tools } = await source().tools([calc()]);
    await expect(byName(tools, "calc__stats").run({}, ctx())).resolves.toBe('counted\n{"count":3}');
  });

  it("an unreachable server yields no tools and an error entry, not a throw; the others still work", async () => {
    const down = await closedPortUrl();
    const { tools, errors } = await source({ connectTimeoutMs: 5_000 }).tools([calc(), { name: "down", url: down, allowTools: ["add"] }]);
    expect(tools.map((t) => t.name).sort()).toEqual(["calc__add", "calc__fail", "calc__slow", "calc__stats"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.server).toBe("down");
    expect(errors[0]!.message).toMatch(/^MCP server down unavailable: .*ECONNREFUSED/);
  });

  it("aborting ctx.signal cancels a slow tool, on the server too", async () => {
    const { tools } = await source().tools([calc()]);
    const ac = new AbortController();
    const call = byName(tools, "calc__slow").run({}, ctx(ac.signal));
    const outcome = call.then(() => "resolved", (err: unknown) => err);
    await server.slowStarted;
    ac.abort(new Error("run interrupted"));
    expect(await outcome).toEqual(new Error("run interrupted"));
    await server.slowCancelled; // the SDK sent notifications/cancelled and the server's handler saw it
    expect(server.methods).toContain("notifications/cancelled");
  });

  it("rejects an invalid server name with a clear error (and tools() reports it without throwing)", async () => {
    const bad = { name: "Bad Name!", url: server.url, allowTools: ["add"] };
    expect(() => assertValidMcpServers([bad])).toThrow('invalid MCP server name "Bad Name!": use 1-32 characters a-z, 0-9, _ or -');
    expect(() => assertValidMcpServers([{ ...bad, name: "x".repeat(33) }])).toThrow(/invalid MCP server name/);
    expect(() => assertValidMcpServers([calc(), calc()])).toThrow("MCP server name calc is used twice");
    expect(() => assertValidMcpServers([{ ...calc(), url: "file:///etc/passwd" }])).toThrow("url must be http: or https:");

    const { tools, errors } = await source().tools([bad, calc()]);
    expect(errors).toEqual([{ server: "Bad Name!", message: 'invalid MCP server name "Bad Name!": use 1-32 characters a-z, 0-9, _ or -' }]);
    expect(tools).toHaveLength(4);
  });

  it("reuses one client per url+headers and caches the tool list for cacheMs", async () => {
    const count = (m: string) => server.methods.filter((x) => x === m).length;
    const init0 = count("initialize");
    const list0 = count("tools/list");
    const cached = source({ cacheMs: 60_000 });
    await cached.tools([calc()]);
    await cached.tools([calc(), { ...calc(), name: "calc2" }]); // same url+headers: same client, same list
    expect(count("initialize") - init0).toBe(1);
    expect(count("tools/list") - list0).toBe(1);

    await cached.tools([{ ...calc(), headers: { Authorization: "Bearer other" } }]); // other headers: another client
    expect(count("initialize") - init0).toBe(2);

    const uncached = source({ cacheMs: 0 });
    const init1 = count("initialize");
    const list1 = count("tools/list");
    await uncached.tools([calc()]);
    await uncached.tools([calc()]);
    expect(count("initialize") - init1).toBe(1);
    expect(count("tools/list") - list1).toBe(2);
  });

  it("reconnects when the server has forgotten the session (restart)", async () => {
    const src = source({ cacheMs: 0 });
    const { tools } = await src.tools([calc()]);
    await server.forgetSessions();
    await expect(byName(tools, "calc__add").run({ a: 1, b: 1 }, ctx())).resolves.toBe("2");
    await server.forgetSessions();
    const again = await src.tools([calc()]);
    expect(again.errors).toEqual([]);
    expect(again.tools).toHaveLength(4);
  });

  it("a call to a server that went away throws 'MCP server X unreachable'", async () => {
    const other = await startTestMcpServer();
    const { tools } = await source().tools([{ name: "gone", url: other.url, allowTools: ["add"] }]);
    await other.close();
    await expect(byName(tools, "gone__add").run({ a: 1, b: 2 }, ctx())).rejects.toThrow(/^MCP server gone unreachable: fetch failed/);
  });
});
