// Remote MCP tools (core/src/agent/mcp.ts) against a real MCP server on loopback (the official SDK's
// McpServer + StreamableHTTPServerTransport): allow-lists, prefixes, results, errors, cancellation.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { assertValidMcpServers, McpToolSource, type McpServerConfig } from "../src/agent/mcp.js";
import type { Tool, ToolContext } from "../src/tools/tools.js";
import { silentLogger } from "../src/logger.js";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { outboundPolicy, outboundRefusalIn, type OutboundPolicy } from "../src/agent/outbound.js";
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
  // The server is on loopback: an internal address, allowed here explicitly.
  const s = new McpToolSource({ logger: silentLogger, outbound: outboundPolicy({ internal: ["127.0.0.1"] }), ...o });
  sources.push(s);
  return s;
}

const scope = { teamId: "t1", sessionId: "s1" };

function ctx(signal: AbortSignal = new AbortController().signal): ToolContext {
  return { signal, idempotencyKey: "k1", teamId: "t1", sessionId: "s1", runId: "r1", epoch: 1n };
}

function byName(tools: Tool[], name: string): Tool {
  const t = tools.find((x) => x.name === name);
  if (!t) throw new Error(`no tool ${name} in ${tools.map((x) => x.name).join(", ")}`);
  return t;
}

const calc = (): McpServerConfig => ({
  name: "calc",
  url: server.url,
  allowTools: ["add", "fail", "stats", "slow"],
  headers: { Authorization: "Bearer test-token" },
});

describe("McpToolSource", () => {
  it("offers only allow-listed tools, prefixed with the server name, with the server's schema and hints", async () => {
    const { tools, errors } = await source().tools([calc()], scope);
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
    const refused = await source({ outbound: outboundPolicy({ allow: ["api.openai.com", "127.0.0.1:1"] }) }).tools([calc()], scope);
    expect(refused.tools).toEqual([]);
    expect(refused.errors).toEqual([
      {
        server: "calc",
        message: `MCP server calc cannot be used: 127.0.0.1:${port} is not among the hosts this Keel's workers may call (KEEL_OUTBOUND_HOSTS: api.openai.com, 127.0.0.1:1)`,
      },
    ]);
    expect(server.methods.length).toBe(before);
    const allowed = await source({ outbound: outboundPolicy({ allow: [`127.0.0.1:${port}`] }) }).tools([calc()], scope);
    expect(allowed.errors).toEqual([]);
    expect(allowed.tools.map((t) => t.name)).toContain("calc__add");
  });

  it("a tool the server has but the allow-list omits is absent; an empty allow-list offers nothing", async () => {
    const src = source();
    const some = await src.tools([{ name: "calc", url: server.url, allowTools: ["add", "nonexistent"] }], scope);
    expect(some.tools.map((t) => t.name)).toEqual(["calc__add"]);
    const none = await src.tools([{ name: "calc", url: server.url, allowTools: [] }], scope);
    expect(none).toEqual({ tools: [], errors: [] });
  });

  it("runs a tool over MCP and returns its text, sending the configured headers", async () => {
    const { tools } = await source().tools([calc()], scope);
    await expect(byName(tools, "calc__add").run({ a: 2, b: 3 }, ctx())).resolves.toBe("5");
    expect(server.authorizations.at(-1)).toBe("Bearer test-token");
  });

  it("a tool result with isError throws the server's message", async () => {
    const { tools } = await source().tools([calc()], scope);
    await expect(byName(tools, "calc__fail").run({ why: "gear slipped" }, ctx())).rejects.toThrow("widget broken: gear slipped");
  });

  it("appends structuredContent as JSON to the text", async () => {
    const { tools } = await source().tools([calc()], scope);
    await expect(byName(tools, "calc__stats").run({}, ctx())).resolves.toBe('counted\n{"count":3}');
  });

  it("an unreachable server yields no tools and an error entry, not a throw; the others still work", async () => {
    const down = await closedPortUrl();
    const { tools, errors } = await source({ connectTimeoutMs: 5_000 }).tools([calc(), { name: "down", url: down, allowTools: ["add"] }], scope);
    expect(tools.map((t) => t.name).sort()).toEqual(["calc__add", "calc__fail", "calc__slow", "calc__stats"]);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.server).toBe("down");
    expect(errors[0]!.message).toMatch(/^MCP server down unavailable: .*ECONNREFUSED/);
  });

  it("aborting ctx.signal cancels a slow tool, on the server too", async () => {
    const { tools } = await source().tools([calc()], scope);
    const ac = new AbortController();
    const call = byName(tools, "calc__slow").run({}, ctx(ac.signal));
    const outcome = call.then(
      () => "resolved",
      (err: unknown) => err,
    );
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

    const { tools, errors } = await source().tools([bad, calc()], scope);
    expect(errors).toEqual([{ server: "Bad Name!", message: 'invalid MCP server name "Bad Name!": use 1-32 characters a-z, 0-9, _ or -' }]);
    expect(tools).toHaveLength(4);
  });

  it("reuses one client per url+headers and caches the tool list for cacheMs", async () => {
    const count = (m: string) => server.methods.filter((x) => x === m).length;
    const init0 = count("initialize");
    const list0 = count("tools/list");
    const cached = source({ cacheMs: 60_000 });
    await cached.tools([calc()], scope);
    await cached.tools([calc(), { ...calc(), name: "calc2" }], scope); // same url+headers: same client, same list
    expect(count("initialize") - init0).toBe(1);
    expect(count("tools/list") - list0).toBe(1);

    await cached.tools([{ ...calc(), headers: { Authorization: "Bearer other" } }], scope); // other headers: another client
    expect(count("initialize") - init0).toBe(2);

    const uncached = source({ cacheMs: 0 });
    const init1 = count("initialize");
    const list1 = count("tools/list");
    await uncached.tools([calc()], scope);
    await uncached.tools([calc()], scope);
    expect(count("initialize") - init1).toBe(1);
    expect(count("tools/list") - list1).toBe(2);
  });

  it("reconnects when the server has forgotten the session (restart)", async () => {
    const src = source({ cacheMs: 0 });
    const { tools } = await src.tools([calc()], scope);
    await server.forgetSessions();
    await expect(byName(tools, "calc__add").run({ a: 1, b: 1 }, ctx())).resolves.toBe("2");
    await server.forgetSessions();
    const again = await src.tools([calc()], scope);
    expect(again.errors).toEqual([]);
    expect(again.tools).toHaveLength(4);
  });

  it("a call to a server that went away throws 'MCP server X unreachable'", async () => {
    const other = await startTestMcpServer();
    const { tools } = await source().tools([{ name: "gone", url: other.url, allowTools: ["add"] }], scope);
    await other.close();
    await expect(byName(tools, "gone__add").run({ a: 1, b: 2 }, ctx())).rejects.toThrow(/^MCP server gone unreachable: fetch failed/);
  });
});

describe("McpToolSource isolation and outbound policy", () => {
  const notes = (): McpServerConfig => ({ name: "notes", url: server.url, allowTools: ["remember", "recall"] });
  const at = (teamId: string, sessionId: string) => ({ scope: { teamId, sessionId }, ctx: { ...ctx(), teamId, sessionId } });

  it("a stateful server's MCP session is never shared between teams or between Keel sessions", async () => {
    const src = source();
    const a1 = at("team-a", "session-a1");
    const a2 = at("team-a", "session-a2");
    const b1 = at("team-b", "session-b1");
    const toolsOf = async (who: typeof a1) => (await src.tools([notes()], who.scope)).tools;
    await expect(byName(await toolsOf(a1), "notes__remember").run({ note: "team A's launch code" }, a1.ctx)).resolves.toBe("stored");
    await expect(byName(await toolsOf(a1), "notes__recall").run({}, a1.ctx)).resolves.toBe("team A's launch code");
    await expect(byName(await toolsOf(b1), "notes__recall").run({}, b1.ctx)).resolves.toBe("(no note)");
    await expect(byName(await toolsOf(a2), "notes__recall").run({}, a2.ctx)).resolves.toBe("(no note)");
    // A tool offered to one session refuses to run for another (it would use the first one's MCP session).
    await expect(byName(await toolsOf(a1), "notes__recall").run({}, b1.ctx)).rejects.toThrow("this tool was offered to another session");
  });

  it("by default an internal address (loopback, by address or by a name resolving to it) is refused and never contacted", async () => {
    const before = server.methods.length;
    const strict = source({ outbound: outboundPolicy() });
    const port = new URL(server.url).port;
    const { tools, errors } = await strict.tools([calc(), { ...calc(), name: "byname", url: `http://localhost:${port}/mcp` }], scope);
    expect(tools).toEqual([]);
    expect(errors).toEqual([
      {
        server: "calc",
        message: expect.stringMatching(/^MCP server calc cannot be used: 127\.0\.0\.1 is an internal address \(loopback.*KEEL_OUTBOUND_INTERNAL_HOSTS/),
      },
      { server: "byname", message: expect.stringMatching(/^MCP server byname cannot be used: localhost resolves to (127\.0\.0\.1|::1), an internal address/) },
    ]);
    expect(server.methods.length).toBe(before);
  });

  it("the policy's fetch checks the address it connects to: a name resolving to loopback and a redirect to an internal address are refused", async () => {
    const port = new URL(server.url).port;
    const redirector = http.createServer((_req, res) => res.writeHead(302, { location: `http://127.0.0.1:${port}/mcp` }).end());
    await new Promise<void>((r) => redirector.listen(0, "127.0.0.1", r));
    try {
      const rport = (redirector.address() as AddressInfo).port;
      const strict = outboundPolicy();
      expect(strict.refusal(`http://localhost:${port}/mcp`)).toBeNull(); // nothing to see before resolving
      await expect(strict.fetch(`http://localhost:${port}/mcp`)).rejects.toThrow(
        expect.objectContaining({ cause: expect.objectContaining({ name: "OutboundRefusedError" }) }),
      );
      // Only the redirector's address is listed: the redirect target is refused when connecting.
      const one = outboundPolicy({ internal: [`127.0.0.1:${rport}`] });
      await expect(one.fetch(`http://127.0.0.1:${rport}/`, { redirect: "manual" })).resolves.toMatchObject({ status: 302 });
      const followed = one.fetch(`http://127.0.0.1:${rport}/`).catch((err: unknown) => outboundRefusalIn(err)?.message);
      expect(await followed).toMatch(new RegExp(`^127\\.0\\.0\\.1 is an internal address`));
    } finally {
      await new Promise<void>((r) => redirector.close(() => r()));
    }
  });

  it("only http and https URLs; file: and gopher: are refused before anything is sent", () => {
    const p = outboundPolicy({ internal: ["127.0.0.1"] });
    expect(p.refusal("file:///etc/passwd")).toBe("file: URLs are not allowed (http: or https: only)");
    expect(p.refusal("gopher://127.0.0.1:6379/_INFO")).toBe("gopher: URLs are not allowed (http: or https: only)");
    for (const internal of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[::ffff:127.0.0.1]:80/",
      "http://100.100.100.200/",
      "http://[fd00:ec2::254]/",
      "http://[64:ff9b::7f00:1]/",
      "http://10.1.2.3/",
      "http://0x7f000001/",
    ]) {
      expect(outboundPolicy().refusal(internal), internal).toMatch(/an internal address/);
    }
    expect(outboundPolicy().refusal("https://api.openai.com/v1")).toBeNull();
  });

  it("a server's error text reaches the model clipped, never a whole reflected body", async () => {
    const body = "INTERNAL-PAGE ".repeat(500);
    const noisy = http.createServer((_req, res) => res.writeHead(500, { "content-type": "text/plain" }).end(body));
    await new Promise<void>((r) => noisy.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(noisy.address() as AddressInfo).port}/mcp`;
      const { errors } = await source().tools([{ name: "noisy", url, allowTools: ["x"] }], scope);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message.length).toBeLessThan(400);
      expect(errors[0]!.message).toMatch(/more characters not shown/);
    } finally {
      await new Promise<void>((r) => noisy.close(() => r()));
    }
  });
});
