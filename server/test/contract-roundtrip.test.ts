// Every route of the table, called through the typed client on the real web process (`next start`,
// real Postgres, an in-process worker with the demo model and real bubblewrap sandboxes): each
// request is checked against openapi.json before it goes out, each answer against the entry's
// status, its zod schema and openapi.json. A route left out fails the last test. Also: errors come
// out of the client as ApiError with the server's code, message, details and status; malformed
// path ids answer 404 not_found from the params schema.
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  builtinTools,
  createAgentStep,
  createModelResolver,
  createPool,
  createSandboxTools,
  notifyDeltas,
  SandboxStore,
  Secrets,
  sessionPolicyResolver,
  silentLogger,
  ToolRegistry,
  Worker,
  type Pool,
} from "@keel/core";
import { api } from "@keel/core/contract/api";
import { ApiClient, ApiError } from "@keel/core/contract/api-client";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { useSandboxEnv } from "@keel/core/testing/sandbox";
import { ADMIN, ensureBuild, startServer, type RunningServer } from "./harness.js";
import { keyClient, RoundTrips } from "./contract-helpers.js";

const env = useSandboxEnv();
const trips = new RoundTrips();
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: Pool;
let server: RunningServer;
let worker: Worker;
let admin: ApiClient;
let agentId = "";
let adminKey = "";

beforeAll(async () => {
  ensureBuild();
  db = await createTestDatabase();
  pool = createPool(db.url, { max: 8 });
  server = await startServer(db.url, { KEEL_SANDBOX_DIR: env.baseDir, KEEL_SANDBOX_RUNTIME: env.runtimeScript });
  const driver = env.driver({ store: new SandboxStore(pool) });
  const tools = createSandboxTools(driver, sessionPolicyResolver(pool, new Secrets({ pool, keyBase64: Buffer.alloc(32, 7).toString("base64") })));
  const step = createAgentStep({
    pool,
    logger: silentLogger,
    tools: new ToolRegistry([...builtinTools, ...tools]),
    models: createModelResolver({}),
    onDelta: notifyDeltas(pool),
  });
  worker = new Worker({ pool, connectionString: db.url, step, logger: silentLogger, leaseMs: 5_000, pollMs: 200, sweepMs: 50 });
  await worker.start();
  // Cookie session first (login is a route of the table too), then an admin key for the rest.
  const anon = new ApiClient({ baseUrl: server.url, validateResponses: true });
  const login = await trips.call(anon, api.auth.login, { body: ADMIN });
  const cookie = login.res.headers.get("set-cookie")!.split(";")[0]!;
  const browser = new ApiClient({ baseUrl: server.url, credentials: { cookie, csrfToken: () => login.data.csrfToken } });
  const key = await trips.call(browser, api.apiKeys.create, { body: { name: "contract", role: "admin" } });
  adminKey = key.data.key;
  admin = keyClient(server.url, adminKey);
  agentId = (
    await trips.call(admin, api.agents.create, {
      body: { name: "filer", model: "demo", tools: ["write_file", "calculator", { name: "get_time", requiresApproval: true }] },
    })
  ).data.id;
}, 300_000);

afterAll(async () => {
  await worker?.stop({ drainMs: 1_000 });
  await server?.stop();
  await pool?.end();
  await db?.drop();
});

async function settled(runId: string, status: string) {
  return waitFor(async () => ((await admin.call(api.runs.get, { params: { id: runId } })).status === status ? true : false), {
    timeoutMs: 30_000,
    what: `run ${status}`,
  });
}

describe("every route round-trips through the table's schemas", () => {
  test("agents, members, API keys, secrets, me, audit, status, usage, the document", async () => {
    await trips.call(admin, api.agents.list);
    await trips.call(admin, api.agents.get, { params: { id: agentId } });
    await trips.call(admin, api.agents.update, {
      params: { id: agentId },
      body: { model: "demo", tools: ["write_file", "calculator", { name: "get_time", requiresApproval: true }], instructions: "be brief" },
    });
    const spare = await trips.call(admin, api.agents.create, { body: { name: "spare", model: "demo" } });
    await trips.call(admin, api.agents.delete, { params: { id: spare.data.id } });
    const member = await trips.call(admin, api.members.add, { body: { email: "m@example.com", password: "a long enough password", role: "viewer" } });
    await trips.call(admin, api.members.list);
    await trips.call(admin, api.members.setRole, { params: { userId: member.data.userId }, body: { role: "member" } });
    // The member's own cookie session: change the password, log out.
    const anon = new ApiClient({ baseUrl: server.url });
    const login = await trips.call(anon, api.auth.login, { body: { email: "m@example.com", password: "a long enough password" } });
    const own = new ApiClient({
      baseUrl: server.url,
      credentials: { cookie: login.res.headers.get("set-cookie")!.split(";")[0]!, csrfToken: () => login.data.csrfToken },
      validateResponses: true,
    });
    expect((await trips.call(own, api.me.get)).data.csrfToken).toBe(login.data.csrfToken);
    await trips.call(own, api.me.password, { body: { currentPassword: "a long enough password", newPassword: "another long password" } });
    await trips.call(own, api.auth.logout);
    await trips.call(admin, api.members.remove, { params: { userId: member.data.userId } });
    const key = await trips.call(admin, api.apiKeys.create, { body: { name: "spare", role: "viewer" } });
    expect((await trips.call(admin, api.apiKeys.list)).data.apiKeys.map((k) => k.name)).toContain("spare");
    await trips.call(admin, api.apiKeys.revoke, { params: { id: key.data.id } });
    await trips.call(admin, api.secrets.put, { params: { name: "GITHUB_TOKEN" }, body: { value: "ghp_x", allowedHosts: ["api.github.com"] } });
    await trips.call(admin, api.secrets.list);
    await trips.call(admin, api.secrets.delete, { params: { name: "GITHUB_TOKEN" } });
    await trips.call(admin, api.audit.list, { query: { limit: "5" } });
    await trips.call(admin, api.status.get);
    await trips.call(admin, api.usage.get, { query: { days: "7" } });
    await trips.call(new ApiClient({ baseUrl: server.url }), api.openapi.get);
  });

  test("sessions, messages, runs, events, the stream, approvals, cancel, archive, delete", async () => {
    const s = (await trips.call(admin, api.sessions.create, { body: { agentId, title: "contract" } })).data;
    await trips.call(admin, api.sessions.get, { params: { id: s.id } });
    const posted = await trips.call(admin, api.sessions.messages, {
      params: { id: s.id },
      body: { content: "what time is it?" },
      headers: { "idempotency-key": "contract-1" },
    });
    await settled(posted.data.runId, "waiting_approval");
    await trips.call(admin, api.sessions.list, { query: { limit: "10", status: "active" } });
    const events = (await trips.call(admin, api.sessions.events, { params: { id: s.id }, query: { after: "0", limit: "100" } })).data.events;
    const callId = (events.find((e) => e.type === "approval_requested")?.payload as { callId: string }).callId;
    const inbox = (await trips.call(admin, api.approvals.list, { query: { limit: "10" } })).data;
    expect(inbox.approvals.map((a) => [a.sessionId, a.callId])).toEqual([[s.id, callId]]);
    await trips.call(admin, api.sessions.decide, { params: { id: s.id, callId }, body: { approve: true } });
    await settled(posted.data.runId, "succeeded");
    await trips.call(admin, api.runs.get, { params: { id: posted.data.runId } });
    const stream = await trips.call(admin, api.sessions.stream, { params: { id: s.id }, query: { after: "0" } });
    await stream.res.body!.cancel();
    await trips.call(admin, api.sessions.cancel, { params: { id: s.id } });
    await trips.call(admin, api.sessions.archive, { params: { id: s.id }, body: { archived: true } });
    await trips.call(admin, api.sessions.delete, { params: { id: s.id } });
  });

  test("the session's sandbox: describe, start, list and read files; the team's sandboxes", async () => {
    const s = (await trips.call(admin, api.sessions.create, { body: { agentId } })).data;
    expect((await trips.call(admin, api.sandbox.get, { params: { id: s.id } })).data.sandbox).toBeNull();
    const posted = await admin.call(api.sessions.messages, { params: { id: s.id }, body: { content: 'write "hello contract" to notes/a.txt' } });
    await settled(posted.runId, "succeeded");
    await trips.call(admin, api.sandbox.start, { params: { id: s.id } });
    await trips.call(admin, api.sandbox.files, { params: { id: s.id }, query: { path: "notes" } });
    expect((await trips.call(admin, api.sandbox.file, { params: { id: s.id }, query: { path: "notes/a.txt" } })).data.content).toBe("hello contract");
    expect((await trips.call(admin, api.sandboxes.list)).data.sandboxes.map((x) => x.sessionId)).toContain(s.id);
  });

  test("the OpenAI-compatible routes", async () => {
    await trips.call(admin, api.openai.models);
    await trips.call(admin, api.openai.model, { params: { id: "filer" } });
    const r = await trips.call(admin, api.openai.chat, { body: { model: "filer", messages: [{ role: "user", content: "calculate 6*7" }] } });
    expect(r.data.choices[0]!.message.content).toContain("42");
  });

  test("teams and platform admins, invitations, the team switcher", async () => {
    const anon = new ApiClient({ baseUrl: server.url, validateResponses: true });
    const login = await trips.call(anon, api.auth.login, { body: ADMIN });
    const cookie = login.res.headers.get("set-cookie")!.split(";")[0]!;
    const browser = new ApiClient({ baseUrl: server.url, credentials: { cookie, csrfToken: () => login.data.csrfToken }, validateResponses: true });
    const platform = keyClient(server.url, (await trips.call(browser, api.apiKeys.create, { body: { name: "ops", role: "admin", platform: true } })).data.key);
    const team = (await trips.call(platform, api.platform.createTeam, { body: { slug: "round-trip", name: "Round trip" } })).data;
    await trips.call(platform, api.platform.listTeams);
    await trips.call(platform, api.platform.renameTeam, { params: { id: team.id }, body: { slug: "round-trip-2" } });
    for (const email of [ADMIN.email, "newcomer@example.com"]) {
      const inv = await trips.call(platform, api.platform.inviteToTeam, { params: { id: team.id }, body: { email, role: "member" } });
      await trips.call(anon, api.invitations.lookup, { body: { token: inv.data.token } });
      await trips.call(anon, api.invitations.accept, {
        body: { token: inv.data.token, password: email === ADMIN.email ? ADMIN.password : "newcomer long password" },
      });
    }
    expect((await trips.call(browser, api.me.teams)).data.teams).toHaveLength(2);
    await trips.call(browser, api.me.switchTeam, { body: { teamId: team.id } });
    await trips.call(browser, api.me.switchTeam, { body: { teamId: login.data.teamId } });
    await trips.call(platform, api.platform.suspendTeam, { params: { id: team.id }, body: { reason: "round trip" } });
    await trips.call(platform, api.platform.resumeTeam, { params: { id: team.id } });
    const own = await trips.call(admin, api.invitations.create, { body: { email: "later@example.com", role: "viewer" } });
    await trips.call(admin, api.invitations.list);
    await trips.call(admin, api.invitations.revoke, { params: { id: own.data.id } });
    await trips.call(platform, api.platform.listAdmins);
    const granted = await trips.call(platform, api.platform.grantAdmin, { body: { email: "newcomer@example.com" } });
    await trips.call(platform, api.platform.revokeAdmin, { params: { userId: granted.data.userId } });
    await trips.call(platform, api.platform.deleteTeam, { params: { id: team.id }, body: { confirm: "round-trip-2" } });
  });

  test("no route of the table was left out", () => {
    expect(trips.missing()).toEqual([]);
  });
});

describe("the typed client's errors", () => {
  test("code, message, details and status come through unchanged", async () => {
    const missing = await admin.call(api.sessions.create, { body: { agentId: "00000000-0000-4000-8000-000000000000" } }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ApiError);
    expect(missing).toMatchObject({ status: 404, code: "not_found" });
    const invalid = (await admin.call(api.agents.create, { body: { name: "x", model: "" } }).catch((e: unknown) => e)) as ApiError;
    expect(invalid).toMatchObject({ status: 422, code: "validation_failed" });
    expect(invalid.issues.map((i) => i.path)).toContain("model");
    // A 409 keeps its own code (the desktop once saw only a generic "conflict").
    const s = await admin.call(api.sessions.create, { body: { agentId } });
    const first = await admin.call(api.sessions.messages, { params: { id: s.id }, body: { content: "what time is it?" } });
    await settled(first.runId, "waiting_approval");
    const busy = await admin.call(api.sessions.messages, { params: { id: s.id }, body: { content: "again", onBusy: "reject" } }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(ApiError);
    expect(busy).toMatchObject({ status: 409, code: "session_busy" });
  });

  test("a malformed path id answers 404 not_found from the params schema, before any handler", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/runs/not-a-uuid"],
      ["GET", "/api/v1/sessions/123/events"],
      ["DELETE", "/api/v1/members/x"],
      ["GET", "/api/v1/agents/%20"],
    ] as const) {
      const res = await fetch(server.url + path, { method, headers: { authorization: `Bearer ${adminKey}` } });
      expect(res.status, path).toBe(404);
      const body = (await res.json()) as { error: { code: string; details: { issues?: unknown[] } } };
      expect(body.error.code).toBe("not_found");
      expect(body.error.details.issues?.length, path).toBeGreaterThan(0);
    }
  });
});
