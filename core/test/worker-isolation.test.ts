// The worker-side half of the isolation matrix (server/test/isolation.test.ts is the API half):
// every place a worker reaches on a team's behalf (model provider, MCP servers, sandbox env,
// secrets, tool results), tried by another team and by a lower role. Real PostgreSQL, the real
// agent loop and worker, a real MCP server (official SDK, stateful sessions) and a scripted
// OpenAI-compatible provider on loopback; loopback "internal" services for SSRF.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createAgentStep } from "../src/agent/loop.js";
import { createModelResolver } from "../src/agent/models.js";
import { McpToolSource } from "../src/agent/mcp.js";
import { moveMcpHeadersToSecrets } from "../src/agent/mcp-headers.js";
import { outboundPolicy } from "../src/agent/outbound.js";
import { builtinTools, ToolRegistry } from "../src/tools/tools.js";
import type { Principal } from "../src/access/principal.js";
import { getAgent, listAgents } from "../src/catalog.js";
import { readAllEvents } from "../src/engine/events.js";
import { eventPayload, type SessionEvent } from "../src/engine/types.js";
import { ForbiddenError, ValidationError } from "../src/errors.js";
import { createLogger } from "../src/logger.js";
import { sessionPolicyResolver } from "../src/sandbox/view.js";
import { Secrets } from "../src/secrets.js";
import type { AgentConfig } from "../src/tenancy.js";
import { waitFor } from "@keel/test/db";
import { useFixture } from "./fixture.js";
import { startFakeOpenAI, textStream, toolCallStream, type FakeOpenAI } from "./support/fake-openai.js";
import { startTestMcpServer, type TestMcpServer } from "./support/mcp-server.js";

const f = useFixture();
let teamB: string;
let secrets: Secrets;
let fake: FakeOpenAI;
let mcp: TestMcpServer;
const logLines: string[] = [];
const logger = createLogger({ level: "debug", destination: new Writable({ write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()) }) });
/** The stand-ins listen on loopback: allowed explicitly, as an operator would list an internal host. */
const loopback = outboundPolicy({ internal: ["127.0.0.1"] });

const as = (teamId: string, role: Principal["role"]): Principal => ({ teamId, role, actor: `test:${role}`, userId: null, apiKeyId: null });

beforeAll(async () => {
  teamB = (await f.tenancy.createTeam({ slug: "globex", name: "Globex" })).id;
  secrets = new Secrets({ pool: f.pool, keyBase64: randomBytes(32).toString("base64") });
  await secrets.put(as(f.teamId, "admin"), "LLM_KEY", "sk-team-a-key");
  await secrets.put(as(f.teamId, "admin"), "MCP_TOKEN", "Bearer team-a-mcp-token");
  await secrets.put(as(f.teamId, "admin"), "DEPLOY_KEY", "team-a-deploy-key");
  await secrets.put(as(teamB, "admin"), "MCP_TOKEN", "Bearer team-b-mcp-token");
  fake = await startFakeOpenAI();
  mcp = await startTestMcpServer();
});
afterAll(async () => {
  await fake?.close();
  await mcp?.close();
});

async function startWorker(o: { outbound?: ReturnType<typeof outboundPolicy> } = {}) {
  const outbound = "outbound" in o ? o.outbound : loopback;
  const step = createAgentStep({
    pool: f.pool,
    logger,
    tools: new ToolRegistry(builtinTools),
    models: createModelResolver({ secrets, maxRetries: 0, timeoutMs: 5_000, ...(outbound ? { outbound } : {}) }),
    mcp: new McpToolSource({ logger, secrets, ...(outbound ? { outbound } : {}) }),
  });
  return f.startWorker({ step, logger });
}

async function agentOf(teamId: string, config: Partial<AgentConfig>): Promise<string> {
  const a = await f.tenancy.createAgent(teamId, { name: `a-${randomBytes(3).toString("hex")}`, model: "gpt-test", provider: { baseUrl: fake.url }, ...config });
  return a.id;
}

/** One message to a new session of the agent; the run's end and the session's log. */
async function ask(teamId: string, agentId: string, status = "succeeded"): Promise<{ sessionId: string; events: SessionEvent[] }> {
  const sessionId = (await f.tenancy.createSession(teamId, { agentId })).id;
  const { runId } = await f.client.postMessage({ teamId, sessionId, content: "hi" });
  await waitFor(
    async () => {
      const s = (await f.client.getRun({ teamId, runId })).status;
      if (["failed", "succeeded", "cancelled"].includes(s) && s !== status) throw new Error(`run ended ${s}, expected ${status}`);
      return s === status;
    },
    { timeoutMs: 20_000, what: `run ${status}` },
  );
  return { sessionId, events: await readAllEvents(f.pool, sessionId) };
}

const text = (events: SessionEvent[]) => events.map((e) => e.payloadText).join("\n");
const last = (events: SessionEvent[]) => eventPayload<{ code: string; message: string; reason?: string }>(events.at(-1)!);

describe("model provider", () => {
  test("a member cannot repoint an agent's provider or name a key secret; an admin's choice survives a member's edit; a viewer edits nothing", async () => {
    const member = as(f.teamId, "member");
    await expect(f.tenancy.createAgent(member, { name: "m-own", model: "m", provider: { baseUrl: "https://attacker.example/v1" } })).rejects.toThrow(
      ForbiddenError,
    );
    await expect(f.tenancy.createAgent(member, { name: "m-key", model: "m", provider: { apiKeySecret: "LLM_KEY" } })).rejects.toThrow(
      /only an admin may set provider.apiKeySecret/,
    );
    const ok = await f.tenancy.createAgent(member, { name: "m-plain", model: "m", instructions: "be brief" }); // the operator's provider
    expect(ok.version).toBe(1);

    const id = await agentOf(f.teamId, { provider: { baseUrl: fake.url, apiKeySecret: "LLM_KEY" } });
    await expect(f.tenancy.updateAgent(member, id, { model: "gpt-test", provider: { baseUrl: "https://attacker.example/v1" } })).rejects.toMatchObject({
      status: 403,
      details: { fields: ["provider.baseUrl"] },
    });
    // A member's edit that leaves the provider out (or repeats it) keeps the admin's provider and key.
    await f.tenancy.updateAgent(member, id, { model: "gpt-test", instructions: "new words" });
    await f.tenancy.updateAgent(member, id, {
      model: "gpt-test",
      instructions: "again",
      provider: { baseUrl: fake.url, apiKeySecret: "LLM_KEY", timeoutMs: 9_000 },
    });
    expect((await getAgent(f.pool, f.teamId, id)).provider).toEqual({ baseUrl: fake.url, apiKeySecret: "LLM_KEY", timeoutMs: 9_000 });

    await expect(f.tenancy.updateAgent(as(f.teamId, "viewer"), id, { model: "x" })).rejects.toMatchObject({ status: 403 });
    await expect(f.tenancy.updateAgent(as(teamB, "admin"), id, { model: "x" })).rejects.toMatchObject({ status: 404 });
    // Only http(s) URLs are stored.
    for (const baseUrl of ["file:///etc/passwd", "gopher://127.0.0.1:6379/_x"]) {
      await expect(f.tenancy.createAgent(as(f.teamId, "admin"), { name: "bad-url", model: "m", provider: { baseUrl } })).rejects.toThrow(ValidationError);
    }
  });

  test("team B's agent naming team A's key secret never gets it; team A's key goes only to team A's provider calls", async () => {
    await startWorker();
    const a = await agentOf(f.teamId, { provider: { baseUrl: fake.url, apiKeySecret: "LLM_KEY" } });
    const b = await agentOf(teamB, { provider: { baseUrl: fake.url, apiKeySecret: "LLM_KEY" } });
    fake.enqueue({ kind: "stream", chunks: textStream("answer for A") });
    const before = fake.requests.length;
    const ranA = await ask(f.teamId, a);
    expect(fake.requests.slice(before).map((r) => r.headers.authorization)).toEqual(["Bearer sk-team-a-key"]);
    const ranB = await ask(teamB, b, "failed");
    expect(fake.requests.length).toBe(before + 1); // B's run sent nothing
    expect(last(ranB.events).reason ?? last(ranB.events).message).toMatch(/LLM_KEY, which this team has not set/);
    expect(text(ranB.events)).not.toMatch(/sk-team-a-key|answer for A/);
    expect(text(ranA.events)).not.toContain("sk-team-a-key");
    expect(logLines.join("")).not.toContain("sk-team-a-key");
  });

  test("with no operator allowance, internal provider URLs are refused before anything is sent (loopback, metadata, a name resolving to loopback)", async () => {
    await startWorker({ outbound: undefined }); // the workers' default policy
    const internal = await startInternalService("INTERNAL-ADMIN-PAGE");
    try {
      for (const baseUrl of [internal.url, "http://169.254.169.254/latest", `http://localhost:${new URL(internal.url).port}/v1`]) {
        const ran = await ask(f.teamId, await agentOf(f.teamId, { provider: { baseUrl } }), "failed");
        expect(last(ran.events)).toMatchObject({ code: "outbound_not_allowed", message: expect.stringMatching(/internal address/) });
      }
      expect(internal.hits()).toBe(0);
    } finally {
      await internal.close();
    }
  });

  test("a provider's error body is clipped in events and logs: status and class kept, the body never copied whole", async () => {
    await startWorker();
    const body = `SECRET-BODY-START ${"internal-data ".repeat(400)} SECRET-BODY-END`;
    fake.enqueue({ kind: "error", status: 400, body: { error: { message: body } } });
    const ran = await ask(f.teamId, await agentOf(f.teamId, {}), "failed");
    for (const e of ran.events.filter((x) => x.type !== "user_message")) expect(e.payloadText.length).toBeLessThan(700);
    expect(text(ran.events)).toMatch(/model provider answered 400/);
    expect(text(ran.events)).not.toContain("SECRET-BODY-END");
    expect(logLines.join("")).not.toContain("SECRET-BODY-END");
  });
});

describe("MCP servers", () => {
  const notes = (secret = "MCP_TOKEN") => [{ name: "notes", url: mcp.url, allowTools: ["remember", "recall"], headerSecrets: { Authorization: secret } }];

  test("two teams on the same stateful MCP server: team B never reads team A's MCP session; each team's header secret goes with its own calls only", async () => {
    await startWorker();
    const a = await agentOf(f.teamId, { mcpServers: notes() });
    const b = await agentOf(teamB, { mcpServers: notes() });
    fake.enqueue(
      { kind: "stream", chunks: toolCallStream([{ id: "r1", name: "notes__remember", args: '{"note":"TEAM-A-NOTE"}' }]) },
      { kind: "stream", chunks: textStream("stored it") },
    );
    const ranA = await ask(f.teamId, a);
    expect(text(ranA.events)).toContain("stored");
    const mark = mcp.authorizations.length;
    fake.enqueue({ kind: "stream", chunks: toolCallStream([{ id: "q1", name: "notes__recall", args: "{}" }]) }, { kind: "stream", chunks: textStream("done") });
    const ranB = await ask(teamB, b);
    const recalled = ranB.events.filter((e) => e.type === "tool_result").map((e) => eventPayload<{ content: string }>(e).content);
    expect(recalled).toEqual(["(no note)"]);
    expect(new Set(mcp.authorizations.slice(mark))).toEqual(new Set(["Bearer team-b-mcp-token"]));
    expect(mcp.authorizations.slice(0, mark)).toContain("Bearer team-a-mcp-token");
    expect(text(ranB.events)).not.toMatch(/TEAM-A-NOTE|team-a-mcp-token/);
    // The model saw nothing of A either: B's requests to the provider carry no A marker.
    expect(
      fake.requests
        .slice(-2)
        .map((r) => r.rawBody)
        .join(""),
    ).not.toContain("TEAM-A-NOTE");
    expect(logLines.join("")).not.toMatch(/team-[ab]-mcp-token/);
  });

  test("an MCP server naming a secret the team has not set is reported, and nothing of another team's value is sent", async () => {
    await startWorker();
    const b = await agentOf(teamB, { mcpServers: notes("DEPLOY_KEY") }); // team A has DEPLOY_KEY, B does not
    const mark = mcp.authorizations.length;
    fake.enqueue({ kind: "stream", chunks: textStream("no tools today") });
    await ask(teamB, b);
    expect(mcp.authorizations.length).toBe(mark);
    expect(logLines.join("")).toMatch(/DEPLOY_KEY, which this team has not set/);
  });

  test("members cannot add or change MCP servers; credentials are never stored in or read back from agent configs", async () => {
    const member = as(f.teamId, "member");
    await expect(f.tenancy.createAgent(member, { name: "m-mcp", model: "m", mcpServers: notes() })).rejects.toMatchObject({
      status: 403,
      details: { fields: ["mcpServers"] },
    });
    const id = await agentOf(f.teamId, { mcpServers: notes() });
    await expect(
      f.tenancy.updateAgent(member, id, { model: "gpt-test", mcpServers: [{ ...notes()[0]!, allowTools: ["remember", "recall", "secret_op"] }] }),
    ).rejects.toThrow(/only an admin may set mcpServers/);
    await f.tenancy.updateAgent(member, id, { model: "gpt-test", instructions: "member edit" });
    expect((await getAgent(f.pool, f.teamId, id)).mcpServers).toEqual(notes());
    // Plain values are refused at save, for admins too.
    await expect(
      f.tenancy.createAgent(f.teamId, {
        name: "plain",
        model: "m",
        mcpServers: [{ name: "x", url: mcp.url, allowTools: [], headers: { Authorization: "Bearer plain" } }] as never,
      }),
    ).rejects.toThrow(ValidationError);
  });

  test("plain header values from older configs are hidden from readers and moved into team secrets the worker resolves", async () => {
    const id = await agentOf(f.teamId, {});
    const legacy = [{ name: "old", url: mcp.url, allowTools: ["recall"], headers: { Authorization: "Bearer legacy-plain-token" } }];
    await f.pool.query("UPDATE agent_versions SET mcp_servers = $2::jsonb WHERE agent_id = $1", [id, JSON.stringify(legacy)]);
    expect(JSON.stringify(await listAgents(f.pool, f.teamId))).not.toContain("legacy-plain-token");
    expect((await getAgent(f.pool, f.teamId, id)).mcpServers).toEqual([{ name: "old", url: mcp.url, allowTools: ["recall"] }]);

    expect(await moveMcpHeadersToSecrets({ pool: f.pool, secrets, logger })).toBe(1);
    expect(await moveMcpHeadersToSecrets({ pool: f.pool, secrets, logger })).toBe(0); // nothing left: runs again safely
    const { rows } = await f.pool.query<{ mcp_servers: unknown }>("SELECT mcp_servers FROM agent_versions WHERE agent_id = $1", [id]);
    expect(rows[0]!.mcp_servers).toEqual([{ name: "old", url: mcp.url, allowTools: ["recall"], headerSecrets: { Authorization: "MCP_OLD_AUTHORIZATION" } }]);
    // Bound to the server it was sent to: usable there, refused elsewhere, never in a sandbox.
    expect(await secrets.resolve(f.teamId, ["MCP_OLD_AUTHORIZATION"], mcp.url)).toEqual({ MCP_OLD_AUTHORIZATION: "Bearer legacy-plain-token" });
    await expect(secrets.resolve(f.teamId, ["MCP_OLD_AUTHORIZATION"], "https://attacker.example/mcp")).rejects.toThrow(ForbiddenError);
    expect(await secrets.resolve(f.teamId, ["MCP_OLD_AUTHORIZATION"])).toEqual({});
    expect(await secrets.resolve(teamB, ["MCP_OLD_AUTHORIZATION"])).toEqual({});
  });
});

describe("secrets bound to hosts", () => {
  test("a bound secret goes only to its hosts: a provider or MCP server elsewhere is refused before anything is sent, and it never enters a sandbox", async () => {
    const admin = as(f.teamId, "admin");
    await secrets.put(admin, "BOUND_LLM_KEY", "sk-bound", ["llm.example.com"]);
    await secrets.put(admin, "BOUND_MCP", "Bearer bound-mcp", ["mcp.example.com:443"]);
    await secrets.put(admin, "LOCAL_LLM_KEY", "sk-local", [`127.0.0.1:${new URL(fake.url).port}`]);
    await expect(secrets.put(admin, "BAD_BIND", "x", ["https://llm.example.com/v1"])).rejects.toThrow(ValidationError);
    await startWorker();

    const before = fake.requests.length;
    const refused = await ask(f.teamId, await agentOf(f.teamId, { provider: { baseUrl: fake.url, apiKeySecret: "BOUND_LLM_KEY" } }), "failed");
    expect(fake.requests.length).toBe(before);
    expect(last(refused.events).message).toMatch(/BOUND_LLM_KEY may only be sent to llm\.example\.com, not to 127\.0\.0\.1/);

    fake.enqueue({ kind: "stream", chunks: textStream("ok") });
    await ask(f.teamId, await agentOf(f.teamId, { provider: { baseUrl: fake.url, apiKeySecret: "LOCAL_LLM_KEY" } }));
    expect(fake.requests.at(-1)!.headers.authorization).toBe("Bearer sk-local");

    const mark = mcp.methods.length;
    fake.enqueue({ kind: "stream", chunks: textStream("no tools") });
    await ask(
      f.teamId,
      await agentOf(f.teamId, { mcpServers: [{ name: "notes", url: mcp.url, allowTools: ["recall"], headerSecrets: { Authorization: "BOUND_MCP" } }] }),
    );
    expect(mcp.methods.length).toBe(mark);
    expect(logLines.join("")).toMatch(/BOUND_MCP may only be sent to mcp\.example\.com:443/);

    const resolve = sessionPolicyResolver(f.pool, secrets);
    const sbx = await agentOf(f.teamId, { sandboxPolicy: { secrets: ["BOUND_LLM_KEY", "DEPLOY_KEY"] } });
    expect((await resolve(f.teamId, (await f.tenancy.createSession(f.teamId, { agentId: sbx })).id)).secrets).toEqual({ DEPLOY_KEY: "team-a-deploy-key" });
    expect((await secrets.list(as(f.teamId, "viewer"))).find((s) => s.name === "BOUND_LLM_KEY")).toMatchObject({ allowedHosts: ["llm.example.com"] });
  });
});

describe("sandbox env and secrets", () => {
  test("a member cannot expose secrets to a sandbox or open its egress; an admin's policy survives a member's edit", async () => {
    const member = as(f.teamId, "member");
    await expect(f.tenancy.createAgent(member, { name: "m-sbx", model: "m", sandboxPolicy: { secrets: ["DEPLOY_KEY"] } })).rejects.toMatchObject({
      status: 403,
      details: { fields: ["sandboxPolicy.secrets"] },
    });
    await expect(
      f.tenancy.createAgent(member, { name: "m-egress", model: "m", sandboxPolicy: { egress: { allow: ["attacker.example"] } } }),
    ).rejects.toMatchObject({ status: 403, details: { fields: ["sandboxPolicy.egress"] } });
    const id = await agentOf(f.teamId, { sandboxPolicy: { secrets: ["DEPLOY_KEY"], egress: { allow: ["api.github.com"] } } });
    await expect(
      f.tenancy.updateAgent(member, id, {
        model: "gpt-test",
        sandboxPolicy: { secrets: ["DEPLOY_KEY"], egress: { allow: ["api.github.com", "attacker.example"] } },
      }),
    ).rejects.toMatchObject({ status: 403, details: { fields: ["sandboxPolicy.egress"] } });
    await f.tenancy.updateAgent(member, id, { model: "gpt-test", sandboxPolicy: { resources: { cpuSeconds: 30 } } });
    expect((await getAgent(f.pool, f.teamId, id)).sandboxPolicy).toEqual({
      resources: { cpuSeconds: 30 },
      secrets: ["DEPLOY_KEY"],
      egress: { allow: ["api.github.com"] },
    });
  });

  test("a sandbox policy resolves its team's secrets only: team B naming team A's secret gets nothing; another team's session is not found", async () => {
    const resolve = sessionPolicyResolver(f.pool, secrets);
    const a = await agentOf(f.teamId, { sandboxPolicy: { secrets: ["DEPLOY_KEY"] } });
    const b = await agentOf(teamB, { sandboxPolicy: { secrets: ["DEPLOY_KEY", "MCP_TOKEN"] } });
    const sa = (await f.tenancy.createSession(f.teamId, { agentId: a })).id;
    const sb = (await f.tenancy.createSession(teamB, { agentId: b })).id;
    expect((await resolve(f.teamId, sa)).secrets).toEqual({ DEPLOY_KEY: "team-a-deploy-key" });
    expect((await resolve(teamB, sb)).secrets).toEqual({ MCP_TOKEN: "Bearer team-b-mcp-token" });
    await expect(resolve(teamB, sa)).rejects.toMatchObject({ status: 404 });
  });

  test("secrets: only admins write; values are never listed; members and viewers read names only", async () => {
    await expect(secrets.put(as(f.teamId, "member"), "MINE", "x")).rejects.toThrow(ForbiddenError);
    await expect(secrets.remove(as(f.teamId, "member"), "LLM_KEY")).rejects.toThrow(ForbiddenError);
    const listed = await secrets.list(as(f.teamId, "viewer"));
    expect(JSON.stringify(listed)).not.toMatch(/sk-team-a-key|team-a-deploy-key/);
    expect((await secrets.list(as(teamB, "viewer"))).map((s) => s.name)).not.toContain("LLM_KEY");
  });
});

/** A loopback "internal" HTTP service (an admin page, a metadata endpoint): counts every request. */
async function startInternalService(body: string): Promise<{ url: string; hits: () => number; close: () => Promise<void> }> {
  let hits = 0;
  const server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: { message: body } }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    hits: () => hits,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
