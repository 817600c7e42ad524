// The isolation matrix: every API route and method (read from the filesystem, see routes.ts),
// called with team B's credentials (admin API key, cookie session, viewer API key) against
// team A's resources, on the real built server with a real Postgres and a demo-model worker.
// A foreign resource must be answered exactly like a missing one (404, same body once the ids are
// swapped for placeholders), a viewer writing gets 403, and no response ever carries team A's data.
// Secret values (team secrets, API keys, passwords, session tokens) never appear in any response,
// event, log line (the web process runs at debug level and its output is captured) or error.
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Accounts, createPool, Secrets, type Pool } from "@keel/core";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { ADMIN, readSse, startDemoWorker, startServer, type RunningServer } from "./harness.js";
import { apiRoutes, fill, type Method, type RouteKey } from "./routes.js";

const SECRETS_KEY = Buffer.alloc(32, 7).toString("base64"); // what harness.startServer sets
const tag = randomBytes(4).toString("hex");
const SECRET_VALUE = `sv-${randomBytes(16).toString("hex")}`;
const B = { email: `b-${tag}@example.com`, password: "team b long password" };

let server: RunningServer;
let worker: Awaited<ReturnType<typeof startDemoWorker>>;
let pool: Pool;
let drop: () => Promise<void>;

type Ids = {
  agentId: string;
  agentName: string;
  sessionId: string;
  runId: string;
  callId: string;
  approvalSessionId: string;
  apiKeyId: string;
  secretName: string;
  memberUserId: string;
  invitationId: string;
};
type Req = { method: Method; path: string; body?: unknown; headers?: Record<string, string> };
type Identity = { name: string; role: "admin" | "viewer"; headers: (write: boolean) => Record<string, string> };

const a = {
  cookie: "",
  csrf: "",
  key: "",
  teamId: "",
  waitingRunId: "",
  ids: {} as Ids,
  content: `alpha-content-${tag}`,
  title: `alpha-title-${tag}`,
  memberEmail: `alpha-member-${tag}@example.com`,
  invitationToken: "",
};
const b = { cookie: "", csrf: "", adminKey: "", viewerKey: "", agentId: "", agentName: `beta-agent-${tag}`, sessionId: "" };
/** Strings that are team A's data: none may appear in any answer to team B. */
let aData: string[] = [];
/** Values that must never leave the server in any answer, event or log line. */
let secretValues: string[] = [];

async function send(r: Req, headers: Record<string, string>): Promise<{ status: number; text: string; body: any }> {
  const h: Record<string, string> = { ...headers, ...r.headers };
  if (r.body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(server.url + r.path, { method: r.method, headers: h, body: r.body === undefined ? undefined : JSON.stringify(r.body) });
  // An SSE answer would never end: read its first frames only.
  const text = res.headers.get("content-type")?.includes("text/event-stream")
    ? JSON.stringify(await readSse(res, (s) => s.length >= 1).catch(() => []))
    : await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* stays null: checked by the caller */
  }
  return { status: res.status, text, body };
}

async function asA(method: Method, path: string, body?: unknown) {
  return send({ method, path, body }, { authorization: `Bearer ${a.key}` });
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  pool = createPool(db.url, { max: 4 });
  server = await startServer(db.url, { KEEL_LOG_LEVEL: "debug" });
  worker = await startDemoWorker(db.url);

  // Team A: the admin from the environment, an API key, an agent, a finished session, a session
  // waiting for an approval, a secret, a member.
  const login = await fetch(`${server.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  a.cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  const loginBody = (await login.json()) as { csrfToken: string; teamId: string };
  a.csrf = loginBody.csrfToken;
  a.teamId = loginBody.teamId;
  const key = await send(
    { method: "POST", path: "/api/v1/api-keys", body: { name: `alpha-key-${tag}`, role: "admin" } },
    { cookie: a.cookie, "x-csrf-token": a.csrf },
  );
  expect(key.status).toBe(201);
  a.key = key.body.key;
  const agentName = `alpha-agent-${tag}`;
  const agent = await asA("POST", "/api/v1/agents", {
    name: agentName,
    model: "demo",
    instructions: `alpha-instructions-${tag}`,
    tools: ["calculator", { name: "get_time", requiresApproval: true }],
  });
  expect(agent.status).toBe(201);
  const session = await asA("POST", "/api/v1/sessions", { agentId: agent.body.id, title: a.title });
  const posted = await asA("POST", `/api/v1/sessions/${session.body.id}/messages`, { content: `${a.content} please calculate 6*7` });
  expect(posted.status).toBe(202);
  await waitFor(async () => (await asA("GET", `/api/v1/runs/${posted.body.runId}`)).body.status === "succeeded", { what: "team A's run" });
  const waiting = await asA("POST", "/api/v1/sessions", { agentId: agent.body.id, title: `${a.title}-2` });
  const wp = await asA("POST", `/api/v1/sessions/${waiting.body.id}/messages`, { content: "what time is it" });
  await waitFor(async () => (await asA("GET", `/api/v1/runs/${wp.body.runId}`)).body.status === "waiting_approval", { what: "waiting_approval" });
  const events = (await asA("GET", `/api/v1/sessions/${waiting.body.id}/events`)).body.events as { type: string; payload: { callId: string } }[];
  a.waitingRunId = wp.body.runId;
  const callId = events.find((e) => e.type === "approval_requested")!.payload.callId;
  const secretName = `ALPHA_${tag.toUpperCase()}`;
  expect((await asA("PUT", `/api/v1/secrets/${secretName}`, { value: SECRET_VALUE })).status).toBe(204);
  const member = await asA("POST", "/api/v1/members", { email: a.memberEmail, password: "alpha member password", role: "member" });
  expect(member.status).toBe(201);
  const invitation = await asA("POST", "/api/v1/invitations", { email: `alpha-invitee-${tag}@example.com`, role: "member" });
  expect(invitation.status).toBe(201);
  a.invitationToken = invitation.body.token;
  await pool.query(`INSERT INTO sandboxes (id, team_id, session_id, driver, state) VALUES ($1, $2, $3, 'local', 'ready')`, [
    randomUUID(),
    a.teamId,
    session.body.id,
  ]);
  a.ids = {
    agentId: agent.body.id,
    agentName,
    sessionId: session.body.id,
    runId: posted.body.runId,
    callId,
    approvalSessionId: waiting.body.id,
    apiKeyId: key.body.id,
    secretName,
    memberUserId: member.body.userId,
    invitationId: invitation.body.id,
  };

  // Team B: an admin (cookie session and API key), a viewer key, its own agent and session.
  const accounts = new Accounts({ pool });
  await accounts.bootstrapAdmin({ email: B.email, password: B.password, teamSlug: `beta-${tag}`, teamName: "Beta" });
  const bl = await fetch(`${server.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(B) });
  b.cookie = bl.headers.get("set-cookie")!.split(";")[0]!;
  b.csrf = ((await bl.json()) as { csrfToken: string }).csrfToken;
  const cookieB = { cookie: b.cookie, "x-csrf-token": b.csrf };
  b.adminKey = (await send({ method: "POST", path: "/api/v1/api-keys", body: { name: "b-admin", role: "admin" } }, cookieB)).body.key;
  b.viewerKey = (await send({ method: "POST", path: "/api/v1/api-keys", body: { name: "b-viewer", role: "viewer" } }, cookieB)).body.key;
  const bAgent = await send({ method: "POST", path: "/api/v1/agents", body: { name: b.agentName, model: "demo" } }, cookieB);
  b.agentId = bAgent.body.id;
  b.sessionId = (await send({ method: "POST", path: "/api/v1/sessions", body: { agentId: b.agentId } }, cookieB)).body.id;

  aData = [
    a.teamId,
    a.ids.agentId,
    agentName,
    `alpha-instructions-${tag}`,
    a.ids.sessionId,
    a.ids.approvalSessionId,
    a.ids.runId,
    wp.body.runId,
    a.title,
    a.content,
    a.memberEmail,
    ADMIN.email,
    a.ids.apiKeyId,
    `alpha-key-${tag}`,
    key.body.prefix,
    secretName,
    SECRET_VALUE,
    a.key,
    a.ids.invitationId,
    `alpha-invitee-${tag}@example.com`,
    a.invitationToken,
  ];
  secretValues = [
    SECRET_VALUE,
    a.key,
    b.adminKey,
    b.viewerKey,
    ADMIN.password,
    B.password,
    "alpha member password",
    a.invitationToken,
    a.cookie.split("=")[1]!,
    b.cookie.split("=")[1]!,
  ];
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await server?.stop();
  await pool?.end();
  await drop?.();
});

// How each route is aimed at team A. `foreign` requests name A's resources: they must answer
// exactly like the same requests with ids nobody has (404), or 403 for a viewer's write.
// `scoped` requests name nothing of A's: they act on B's own team and must show nothing of A's.
type Case = { foreign?: (ids: Ids) => Req[]; scoped?: (ids: Ids) => Req[] };
const sid = (ids: Ids) => `/api/v1/sessions/${ids.sessionId}`;
const matrix: Record<RouteKey, Case> = {
  "GET /api/v1/[...rest]": { scoped: () => [{ method: "GET", path: "/api/v1/no/such/route" }] },
  "POST /api/v1/[...rest]": { scoped: () => [{ method: "POST", path: "/api/v1/no/such/route", body: {} }] },
  "PUT /api/v1/[...rest]": { scoped: () => [{ method: "PUT", path: "/api/v1/no/such/route", body: {} }] },
  "PATCH /api/v1/[...rest]": { scoped: () => [{ method: "PATCH", path: "/api/v1/no/such/route", body: {} }] },
  "DELETE /api/v1/[...rest]": { scoped: () => [{ method: "DELETE", path: "/api/v1/no/such/route" }] },
  "GET /api/v1/agents": { scoped: () => [{ method: "GET", path: "/api/v1/agents" }] },
  "POST /api/v1/agents": { scoped: () => [{ method: "POST", path: "/api/v1/agents", body: { name: `beta-made-${tag}`, model: "demo" } }] },
  "GET /api/v1/agents/[id]": { foreign: (i) => [{ method: "GET", path: `/api/v1/agents/${i.agentId}` }] },
  "PUT /api/v1/agents/[id]": { foreign: (i) => [{ method: "PUT", path: `/api/v1/agents/${i.agentId}`, body: { model: "demo", instructions: "taken over" } }] },
  "DELETE /api/v1/agents/[id]": { foreign: (i) => [{ method: "DELETE", path: `/api/v1/agents/${i.agentId}` }] },
  "GET /api/v1/api-keys": { scoped: () => [{ method: "GET", path: "/api/v1/api-keys" }] },
  "POST /api/v1/api-keys": { scoped: () => [{ method: "POST", path: "/api/v1/api-keys", body: { name: "b-made", role: "viewer" } }] },
  "DELETE /api/v1/api-keys/[id]": { foreign: (i) => [{ method: "DELETE", path: `/api/v1/api-keys/${i.apiKeyId}` }] },
  "GET /api/v1/approvals": { scoped: () => [{ method: "GET", path: "/api/v1/approvals?limit=500" }] },
  "GET /api/v1/audit": { scoped: () => [{ method: "GET", path: "/api/v1/audit?limit=500" }] },
  "POST /api/v1/auth/login": { scoped: () => [{ method: "POST", path: "/api/v1/auth/login", body: B }] },
  "POST /api/v1/auth/logout": { scoped: () => [{ method: "POST", path: "/api/v1/auth/logout" }] },
  "GET /api/v1/me": { scoped: () => [{ method: "GET", path: "/api/v1/me" }] },
  // B's own password (a wrong current one: 403), never anything of A's.
  "POST /api/v1/me/password": {
    scoped: () => [{ method: "POST", path: "/api/v1/me/password", body: { currentPassword: "not b's password", newPassword: "b's new long password" } }],
  },
  "GET /api/v1/members": { scoped: () => [{ method: "GET", path: "/api/v1/members" }] },
  "PATCH /api/v1/members/[userId]": { foreign: (i) => [{ method: "PATCH", path: `/api/v1/members/${i.memberUserId}`, body: { role: "admin" } }] },
  "DELETE /api/v1/members/[userId]": { foreign: (i) => [{ method: "DELETE", path: `/api/v1/members/${i.memberUserId}` }] },
  "POST /api/v1/members": {
    scoped: () => [{ method: "POST", path: "/api/v1/members", body: { email: `b-member-${tag}@example.com`, password: "b member password", role: "viewer" } }],
  },
  // Invitations: A's pending one is invisible to B (404 like a missing id); a token is the
  // credential itself, so lookup and accept name none of A's (B's own or a bogus one).
  "GET /api/v1/invitations": { scoped: () => [{ method: "GET", path: "/api/v1/invitations" }] },
  "POST /api/v1/invitations": {
    scoped: () => [{ method: "POST", path: "/api/v1/invitations", body: { email: `b-invitee-${tag}@example.com`, role: "viewer" } }],
  },
  "DELETE /api/v1/invitations/[id]": { foreign: (i) => [{ method: "DELETE", path: `/api/v1/invitations/${i.invitationId}` }] },
  "POST /api/v1/invitations/lookup": { scoped: () => [{ method: "POST", path: "/api/v1/invitations/lookup", body: { token: `ki_bogus_${tag}` } }] },
  "POST /api/v1/invitations/accept": {
    scoped: () => [{ method: "POST", path: "/api/v1/invitations/accept", body: { token: `ki_bogus_${tag}`, password: "some long password" } }],
  },
  // The team switcher: B cannot move into A's team (404 for B's login, 403 for keys); B's own teams only.
  "GET /api/v1/me/teams": { scoped: () => [{ method: "GET", path: "/api/v1/me/teams" }] },
  "POST /api/v1/me/team": { scoped: () => [{ method: "POST", path: "/api/v1/me/team", body: { teamId: a.teamId } }] },
  // Platform routes: B's admin is a team admin, not a platform admin: 403 on each, nothing of A's
  // (team A's id named in the path is B's own request, not a leak). test/teams.test.ts checks the codes.
  "GET /api/v1/platform/teams": { scoped: () => [{ method: "GET", path: "/api/v1/platform/teams" }] },
  "POST /api/v1/platform/teams": { scoped: () => [{ method: "POST", path: "/api/v1/platform/teams", body: { slug: `beta-made-${tag}` } }] },
  "PATCH /api/v1/platform/teams/[id]": { scoped: () => [{ method: "PATCH", path: `/api/v1/platform/teams/${a.teamId}`, body: { name: "taken over" } }] },
  "DELETE /api/v1/platform/teams/[id]": { scoped: () => [{ method: "DELETE", path: `/api/v1/platform/teams/${a.teamId}`, body: { confirm: "acme" } }] },
  "POST /api/v1/platform/teams/[id]/suspend": {
    scoped: () => [{ method: "POST", path: `/api/v1/platform/teams/${a.teamId}/suspend`, body: { reason: "b says so" } }],
  },
  "POST /api/v1/platform/teams/[id]/resume": { scoped: () => [{ method: "POST", path: `/api/v1/platform/teams/${a.teamId}/resume` }] },
  "POST /api/v1/platform/teams/[id]/invitations": {
    scoped: () => [{ method: "POST", path: `/api/v1/platform/teams/${a.teamId}/invitations`, body: { email: `b-spy-${tag}@example.com`, role: "admin" } }],
  },
  "GET /api/v1/platform/admins": { scoped: () => [{ method: "GET", path: "/api/v1/platform/admins" }] },
  "POST /api/v1/platform/admins": { scoped: () => [{ method: "POST", path: "/api/v1/platform/admins", body: { email: B.email } }] },
  "DELETE /api/v1/platform/admins/[userId]": { scoped: () => [{ method: "DELETE", path: `/api/v1/platform/admins/${a.ids.memberUserId}` }] },
  "GET /api/v1/openapi.json": { scoped: () => [{ method: "GET", path: "/api/v1/openapi.json" }] },
  "GET /api/v1/runs/[id]": { foreign: (i) => [{ method: "GET", path: `/api/v1/runs/${i.runId}` }] },
  "GET /api/v1/sandboxes": { scoped: () => [{ method: "GET", path: "/api/v1/sandboxes" }] },
  "GET /api/v1/secrets": { scoped: () => [{ method: "GET", path: "/api/v1/secrets" }] },
  "DELETE /api/v1/secrets/[name]": { foreign: (i) => [{ method: "DELETE", path: `/api/v1/secrets/${i.secretName}` }] },
  // Secret names are per team: B writing A's name makes B's own secret; A's stays (checked below).
  "PUT /api/v1/secrets/[name]": { scoped: (i) => [{ method: "PUT", path: `/api/v1/secrets/${i.secretName}`, body: { value: "b's own value" } }] },
  "GET /api/v1/sessions": {
    scoped: (i) => [
      { method: "GET", path: "/api/v1/sessions?limit=200" },
      { method: "GET", path: "/api/v1/sessions?status=active" },
      { method: "GET", path: `/api/v1/sessions?q=alpha-title-${tag}` },
      { method: "GET", path: `/api/v1/sessions?agentId=${i.agentId}` },
      { method: "GET", path: `/api/v1/sessions?q=${i.sessionId}` },
    ],
  },
  "POST /api/v1/sessions": {
    foreign: (i) => [{ method: "POST", path: "/api/v1/sessions", body: { agentId: i.agentId } }],
    scoped: () => [{ method: "POST", path: "/api/v1/sessions", body: { agentId: "" } }],
  },
  "GET /api/v1/sessions/[id]": { foreign: (i) => [{ method: "GET", path: sid(i) }] },
  "DELETE /api/v1/sessions/[id]": { foreign: (i) => [{ method: "DELETE", path: sid(i) }] },
  "POST /api/v1/sessions/[id]/approvals/[callId]": {
    foreign: (i) => [
      { method: "POST", path: `/api/v1/sessions/${i.approvalSessionId}/approvals/${i.callId}`, body: { approve: true } },
      { method: "POST", path: `/api/v1/sessions/${b.sessionId}/approvals/${i.callId}`, body: { approve: false } },
    ],
  },
  "POST /api/v1/sessions/[id]/archive": { foreign: (i) => [{ method: "POST", path: `${sid(i)}/archive`, body: { archived: true } }] },
  "POST /api/v1/sessions/[id]/cancel": { foreign: (i) => [{ method: "POST", path: `/api/v1/sessions/${i.approvalSessionId}/cancel`, body: {} }] },
  "GET /api/v1/sessions/[id]/events": {
    foreign: (i) => [
      { method: "GET", path: `${sid(i)}/events` },
      { method: "GET", path: `${sid(i)}/events?after=1&limit=5` },
    ],
  },
  "POST /api/v1/sessions/[id]/messages": { foreign: (i) => [{ method: "POST", path: `${sid(i)}/messages`, body: { content: "hi from b" } }] },
  "GET /api/v1/sessions/[id]/stream": {
    foreign: (i) => [
      { method: "GET", path: `${sid(i)}/stream` },
      { method: "GET", path: `${sid(i)}/stream`, headers: { "last-event-id": "0" } },
    ],
  },
  // Team A's session has a (recorded) ready sandbox: B must not learn even that.
  "GET /api/v1/sessions/[id]/sandbox": { foreign: (i) => [{ method: "GET", path: `${sid(i)}/sandbox` }] },
  "GET /api/v1/sessions/[id]/sandbox/files": { foreign: (i) => [{ method: "GET", path: `${sid(i)}/sandbox/files?path=.` }] },
  "GET /api/v1/sessions/[id]/sandbox/file": { foreign: (i) => [{ method: "GET", path: `${sid(i)}/sandbox/file?path=notes.txt` }] },
  "POST /api/v1/sessions/[id]/sandbox/start": { foreign: (i) => [{ method: "POST", path: `${sid(i)}/sandbox/start` }] },
  "GET /api/v1/status": { scoped: () => [{ method: "GET", path: "/api/v1/status" }] },
  "GET /api/v1/usage": {
    scoped: () => [
      { method: "GET", path: "/api/v1/usage" },
      { method: "GET", path: "/api/v1/usage?days=366" },
    ],
  },
  "POST /v1/chat/completions": {
    foreign: (i) => [
      { method: "POST", path: "/v1/chat/completions", body: { model: i.agentName, messages: [{ role: "user", content: "hi" }] } },
      {
        method: "POST",
        path: "/v1/chat/completions",
        body: { model: b.agentName, messages: [{ role: "user", content: "hi" }] },
        headers: { "x-keel-session-id": i.sessionId },
      },
      {
        method: "POST",
        path: "/v1/chat/completions",
        body: { model: b.agentName, stream: true, messages: [{ role: "user", content: "hi" }] },
        headers: { "x-keel-session-id": i.sessionId },
      },
    ],
  },
  "GET /v1/models": { scoped: () => [{ method: "GET", path: "/v1/models" }] },
  "GET /v1/models/[id]": { foreign: (i) => [{ method: "GET", path: `/v1/models/${i.agentName}` }] },
  "GET /v1/[...rest]": { scoped: () => [{ method: "GET", path: "/v1/no/such/route" }] },
  "POST /v1/[...rest]": { scoped: () => [{ method: "POST", path: "/v1/no/such/route", body: {} }] },
  "PUT /v1/[...rest]": { scoped: () => [{ method: "PUT", path: "/v1/no/such/route", body: {} }] },
  "PATCH /v1/[...rest]": { scoped: () => [{ method: "PATCH", path: "/v1/no/such/route", body: {} }] },
  "DELETE /v1/[...rest]": { scoped: () => [{ method: "DELETE", path: "/v1/no/such/route" }] },
};

const isWrite = (m: Method) => !["GET", "HEAD", "OPTIONS"].includes(m);
// Reads first (so B's own later writes cannot show up in them), deletes before puts (B's PUT of
// A's secret name must not turn the DELETE case into B deleting its own), logout last.
const phase = (k: string) => (k.includes("/auth/logout") ? 3 : k.startsWith("GET") ? 0 : k.startsWith("DELETE") ? 1 : 2);

function missingIds(): Ids {
  return {
    agentId: randomUUID(),
    agentName: `missing-${tag}`,
    sessionId: randomUUID(),
    runId: randomUUID(),
    callId: `call_missing_${tag}`,
    approvalSessionId: randomUUID(),
    apiKeyId: randomUUID(),
    secretName: `MISSING_${tag.toUpperCase()}`,
    memberUserId: randomUUID(),
    invitationId: randomUUID(),
  };
}

/** The answer with each id replaced by its name, so a foreign and a missing answer compare equal. */
function normalize(text: string, ids: Ids): string {
  let t = text;
  for (const [k, v] of Object.entries(ids)) t = t.split(v).join(`<${k}>`);
  return t.replace(/"x-request-id":"[^"]*"/g, "");
}

describe("isolation matrix", () => {
  test("the matrix covers every route and method on disk, and nothing else", () => {
    expect(Object.keys(matrix).sort()).toEqual(apiRoutes());
  });

  test("team B (admin key, cookie session, viewer key) gets nothing of team A's on any route", async () => {
    const identities: Identity[] = [
      { name: "B admin key", role: "admin", headers: () => ({ authorization: `Bearer ${b.adminKey}` }) },
      { name: "B cookie session", role: "admin", headers: (w) => ({ cookie: b.cookie, ...(w ? { "x-csrf-token": b.csrf } : {}) }) },
      { name: "B viewer key", role: "viewer", headers: () => ({ authorization: `Bearer ${b.viewerKey}` }) },
    ];
    const keys = (Object.keys(matrix) as RouteKey[]).sort((x, y) => phase(x) - phase(y));
    const problems: unknown[] = [];
    let checked = 0;
    for (const key of keys) {
      const c = matrix[key]!;
      for (const who of identities) {
        for (const [i, r] of (c.foreign?.(a.ids) ?? []).entries()) {
          const missingSet = missingIds();
          const m = c.foreign!(missingSet)[i]!;
          const got = await send(r, who.headers(isWrite(r.method)));
          const missing = await send(m, who.headers(isWrite(m.method)));
          checked++;
          const viewerWrite = who.role === "viewer" && isWrite(r.method);
          if (got.status >= 500 || got.body?.error === undefined)
            problems.push({ key, who: who.name, path: r.path, status: got.status, text: got.text.slice(0, 300) });
          else if (viewerWrite ? got.status !== 403 : got.status !== 404)
            problems.push({ key, who: who.name, path: r.path, status: got.status, code: got.body.error.code, expected: viewerWrite ? 403 : 404 });
          else if (normalize(got.text, a.ids) !== normalize(missing.text, missingSet))
            problems.push({ key, who: who.name, path: r.path, foreign: got.text, missing: missing.text });
          const leaked = aData.filter((s) => got.text.includes(s) && !JSON.stringify(r).includes(s));
          if (leaked.length) problems.push({ key, who: who.name, path: r.path, leaked });
        }
        for (const r of c.scoped?.(a.ids) ?? []) {
          const got = await send(r, who.headers(isWrite(r.method)));
          checked++;
          if (got.status >= 500) problems.push({ key, who: who.name, path: r.path, status: got.status, text: got.text.slice(0, 300) });
          if (got.status >= 400 && got.body?.error?.code === undefined)
            problems.push({ key, who: who.name, path: r.path, status: got.status, notJsonError: got.text.slice(0, 200) });
          const leaked = aData.filter((s) => got.text.includes(s) && !JSON.stringify(r).includes(s));
          if (leaked.length) problems.push({ key, who: who.name, path: r.path, leaked });
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(100);

    // Team A's things are untouched: the agent, its sessions, the approval, the key, the secret.
    expect((await asA("GET", `/api/v1/agents/${a.ids.agentId}`)).body).toMatchObject({ version: 1, instructions: `alpha-instructions-${tag}` });
    expect((await asA("GET", sid(a.ids))).body).toMatchObject({ status: "idle", title: a.title });
    expect((await asA("GET", `/api/v1/runs/${a.ids.runId}`)).body.status).toBe("succeeded");
    const waiting = (await asA("GET", `/api/v1/sessions/${a.ids.approvalSessionId}/events`)).body.events as { type: string }[];
    expect(waiting.map((e) => e.type)).not.toContain("approval_decided");
    expect((await asA("GET", `/api/v1/runs/${a.waitingRunId}`)).body.status).toBe("waiting_approval");
    const aEvents = (await asA("GET", `${sid(a.ids)}/events`)).body.events as { type: string; payload: { content?: unknown } }[];
    expect(aEvents.filter((e) => e.type === "user_message")).toHaveLength(1);
    const aSecrets = await new Secrets({ pool, keyBase64: SECRETS_KEY }).resolve(a.teamId, [a.ids.secretName]);
    expect(aSecrets).toEqual({ [a.ids.secretName]: SECRET_VALUE });
    expect((await asA("GET", "/api/v1/me")).status).toBe(200); // A's key was not revoked (nor its team suspended or renamed)
    expect((await pool.query("SELECT slug, suspended_at FROM teams WHERE id = $1", [a.teamId])).rows).toEqual([{ slug: "acme", suspended_at: null }]);
    expect((await pool.query("SELECT count(*)::int AS n FROM users WHERE platform_admin", [])).rows[0].n).toBe(1);
    expect((await asA("GET", "/api/v1/invitations")).body.invitations).toHaveLength(1);
    const aSessions = await pool.query("SELECT count(*)::int AS n FROM sessions WHERE team_id = $1 AND deleted_at IS NULL AND status <> 'archived'", [
      a.teamId,
    ]);
    expect(aSessions.rows[0].n).toBe(2);
  });
});

describe("secret values never leave the server", () => {
  test("not in team A's own answers, its events and streams, error messages, or the web process's log", async () => {
    const texts: string[] = [];
    const put = async (r: Req) => texts.push((await send(r, { authorization: `Bearer ${a.key}` })).text);
    for (const path of [
      "/api/v1/secrets",
      "/api/v1/audit?limit=500",
      "/api/v1/api-keys",
      "/api/v1/members",
      "/api/v1/me",
      "/api/v1/status",
      "/api/v1/sessions",
      `${sid(a.ids)}/events`,
      `/api/v1/agents`,
    ]) {
      await put({ method: "GET", path });
    }
    // Refused writes whose bodies carry the value: the error must not echo it.
    const name = a.ids.secretName;
    await put({ method: "PUT", path: `/api/v1/secrets/${name.toLowerCase()}`, body: { value: SECRET_VALUE } });
    await put({ method: "PUT", path: `/api/v1/secrets/${name}`, body: { value: SECRET_VALUE, extra: SECRET_VALUE } });
    await put({ method: "PUT", path: `/api/v1/secrets/${name}`, body: { value: [SECRET_VALUE] } });
    await put({ method: "PUT", path: `/api/v1/secrets/${name}`, body: { value: SECRET_VALUE.repeat(5000) } });
    await put({ method: "POST", path: "/api/v1/auth/login", body: { email: ADMIN.email, password: SECRET_VALUE } });
    await put({ method: "POST", path: "/api/v1/members", body: { email: SECRET_VALUE, password: SECRET_VALUE, role: "admin" } });
    // A value rotated and written again: still write-only.
    await put({ method: "PUT", path: `/api/v1/secrets/${name}`, body: { value: SECRET_VALUE } });
    const stream = await fetch(`${server.url}${sid(a.ids)}/stream`, { headers: { authorization: `Bearer ${a.key}` } });
    texts.push(JSON.stringify(await readSse(stream, (s) => s.filter((e) => e.id !== null).length >= 4)));
    const leaks = secretValues.flatMap((v) => texts.filter((t) => t.includes(v)).map((t) => ({ value: v.slice(0, 8), in: t.slice(0, 200) })));
    expect(leaks).toEqual([]);
    await waitFor(() => server.output().includes('"msg":"request"'), { what: "debug request logs" });
    const log = server.output();
    expect(log.length).toBeGreaterThan(1000);
    expect(secretValues.filter((v) => log.includes(v)).map((v) => v.slice(0, 8))).toEqual([]);
  });
});
