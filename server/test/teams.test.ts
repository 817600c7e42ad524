// Teams as a product (issue 18 parts 1 and 2) through the real API: platform admins create,
// rename, suspend, resume and delete teams; people join by invitation links (single use,
// expiring, stored hashed), switch teams, and a suspended team's keys and logins answer 403 with
// the reason while its queued runs wait. Built server, real Postgres, a demo-model worker.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createPool, EngineClient, type Pool } from "@keel/core";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { ADMIN, readSse, startDemoWorker, startServer, type RunningServer } from "./harness.js";

let server: RunningServer;
let worker: Awaited<ReturnType<typeof startDemoWorker>>;
let pool: Pool;
let drop: () => Promise<void>;

type Who = { cookie?: string; csrf?: string; key?: string };
type Answer = { status: number; body: any; headers: Headers };

async function call(who: Who | null, method: string, path: string, body?: unknown): Promise<Answer> {
  const h: Record<string, string> = {};
  if (who?.key) h.authorization = `Bearer ${who.key}`;
  if (who?.cookie) h.cookie = who.cookie;
  if (who?.csrf && method !== "GET") h["x-csrf-token"] = who.csrf;
  if (body !== undefined) h["content-type"] = "application/json";
  const res = await fetch(server.url + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** A logged-in cookie session from a login or an accepted invitation's answer. */
function session(a: Answer): Who {
  expect(a.status, JSON.stringify(a.body)).toBe(200);
  return { cookie: a.headers.get("set-cookie")!.split(";")[0]!, csrf: a.body.csrfToken };
}
const login = async (email: string, password: string) => call(null, "POST", "/api/v1/auth/login", { email, password });
const code = (a: Answer) => `${a.status} ${a.body?.error?.code}`;

let admin: Who; // the first-start admin: platform admin, team admin of acme
let platformKey: Who;
let acmeId = "";

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  pool = createPool(db.url, { max: 4 });
  server = await startServer(db.url);
  worker = await startDemoWorker(db.url);
  admin = session(await login(ADMIN.email, ADMIN.password));
  const me = await call(admin, "GET", "/api/v1/me");
  expect(me.body).toMatchObject({ platformAdmin: true, role: "admin" });
  acmeId = me.body.teamId;
  const k = await call(admin, "POST", "/api/v1/api-keys", { name: "ops", role: "admin", platform: true });
  expect(k.status).toBe(201);
  expect(k.body.platform).toBe(true);
  platformKey = { key: k.body.key };
}, 240_000);

afterAll(async () => {
  await worker?.stop();
  await server?.stop();
  await pool?.end();
  await drop?.();
});

const BOB = { email: "bob@labs.example", password: "bob's long password" };
let labsId = "";
let bob: Who;
let bobKey: Who;

describe.sequential("platform admins and teams", () => {
  test("create a team; a duplicate slug is 409, a bad slug 422; a team admin's key cannot create a platform key", async () => {
    const created = await call(platformKey, "POST", "/api/v1/platform/teams", { slug: "research", name: "Research" });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ slug: "research", name: "Research", members: 0, suspendedAt: null });
    labsId = created.body.id;
    expect(code(await call(platformKey, "POST", "/api/v1/platform/teams", { slug: "research" }))).toBe("409 team_exists");
    expect(code(await call(admin, "POST", "/api/v1/platform/teams", { slug: "Bad Slug" }))).toBe("422 validation_failed");
    const list = await call(platformKey, "GET", "/api/v1/platform/teams");
    expect(list.body.teams.map((t: { slug: string }) => t.slug)).toEqual(["acme", "research"]);
    const plainKey = (await call(admin, "POST", "/api/v1/api-keys", { name: "plain", role: "admin" })).body.key;
    expect(code(await call({ key: plainKey }, "GET", "/api/v1/platform/teams"))).toBe("403 platform_admin_required");
  });

  test("rename: slug and name; an invalid slug is 422, a taken one 409", async () => {
    const r = await call(platformKey, "PATCH", `/api/v1/platform/teams/${labsId}`, { slug: "labs", name: "Labs" });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ slug: "labs", name: "Labs" });
    for (const slug of ["-labs", "Labs", "a b", "x".repeat(65), ""])
      expect(code(await call(platformKey, "PATCH", `/api/v1/platform/teams/${labsId}`, { slug })), slug).toBe("422 validation_failed");
    expect(code(await call(platformKey, "PATCH", `/api/v1/platform/teams/${labsId}`, { slug: "acme" }))).toBe("409 team_exists");
    expect(code(await call(platformKey, "PATCH", `/api/v1/platform/teams/${labsId}`, {}))).toBe("422 validation_failed");
    expect(code(await call(platformKey, "PATCH", "/api/v1/platform/teams/00000000-0000-4000-8000-000000000000", { name: "x" }))).toBe("404 not_found");
  });

  test("a platform admin invites the team's first admin; the link works once; the token is stored hashed", async () => {
    const inv = await call(platformKey, "POST", `/api/v1/platform/teams/${labsId}/invitations`, { email: BOB.email, role: "admin" });
    expect(inv.status).toBe(201);
    expect(inv.body.token).toMatch(/^ki_/);
    const stored = await pool.query<{ token_hash: string }>("SELECT token_hash FROM invitations WHERE id = $1", [inv.body.id]);
    expect(stored.rows[0]!.token_hash).toBe(createHash("sha256").update(inv.body.token).digest("hex"));
    const preview = await call(null, "POST", "/api/v1/invitations/lookup", { token: inv.body.token });
    expect(preview.body).toMatchObject({ email: BOB.email, role: "admin", teamSlug: "labs", teamName: "Labs", existingAccount: false });
    expect(code(await call(null, "POST", "/api/v1/invitations/accept", { token: inv.body.token, password: "short" }))).toBe("422 validation_failed");
    bob = session(await call(null, "POST", "/api/v1/invitations/accept", { token: inv.body.token, password: BOB.password }));
    expect((await call(bob, "GET", "/api/v1/me")).body).toMatchObject({ teamId: labsId, role: "admin", platformAdmin: false });
    expect(code(await call(null, "POST", "/api/v1/invitations/accept", { token: inv.body.token, password: BOB.password }))).toBe("410 invitation_used");
    expect(code(await call(null, "POST", "/api/v1/invitations/lookup", { token: inv.body.token }))).toBe("410 invitation_used");
    expect(code(await call(null, "POST", "/api/v1/invitations/lookup", { token: "ki_nope" }))).toBe("404 invitation_not_found");
    bobKey = { key: (await call(bob, "POST", "/api/v1/api-keys", { name: "bob", role: "admin" })).body.key };
  });

  test("a team admin (not platform admin) gets 403 on every platform route, and cannot make a platform key", async () => {
    const id = labsId;
    for (const [m, p, b] of [
      ["GET", "/api/v1/platform/teams"],
      ["POST", "/api/v1/platform/teams", { slug: "sneaky" }],
      ["PATCH", `/api/v1/platform/teams/${id}`, { name: "mine" }],
      ["DELETE", `/api/v1/platform/teams/${acmeId}`, { confirm: "acme" }],
      ["POST", `/api/v1/platform/teams/${acmeId}/suspend`, { reason: "x" }],
      ["POST", `/api/v1/platform/teams/${id}/resume`],
      ["POST", `/api/v1/platform/teams/${acmeId}/invitations`, { email: "x@example.com", role: "admin" }],
      ["GET", "/api/v1/platform/admins"],
      ["POST", "/api/v1/platform/admins", { email: BOB.email }],
      ["DELETE", `/api/v1/platform/admins/${id}`],
    ] as [string, string, unknown?][]) {
      for (const who of [bob, bobKey]) expect(code(await call(who, m, p, b)), `${m} ${p}`).toBe("403 platform_admin_required");
    }
    expect((await call(bob, "POST", "/api/v1/api-keys", { name: "p", role: "admin", platform: true })).status).toBe(403);
    expect((await call(platformKey, "GET", "/api/v1/platform/teams")).body.teams.map((t: { slug: string }) => t.slug)).toEqual(["acme", "labs"]);
  });

  test("team invitations: expired and withdrawn links are 410; an existing account joins with its own password; the team switcher", async () => {
    const carol = await call(bob, "POST", "/api/v1/invitations", { email: "Carol@Labs.example", role: "member" });
    expect(carol.body).toMatchObject({ email: "carol@labs.example", role: "member" });
    await pool.query("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1", [carol.body.id]);
    expect(code(await call(null, "POST", "/api/v1/invitations/accept", { token: carol.body.token, password: "carol's long password" }))).toBe(
      "410 invitation_expired",
    );
    expect((await call(bob, "GET", "/api/v1/invitations")).body.invitations).toMatchObject([{ email: "carol@labs.example", expired: true }]);
    const again = await call(bob, "POST", "/api/v1/invitations", { email: "carol@labs.example", role: "member" });
    expect((await call(bob, "DELETE", `/api/v1/invitations/${again.body.id}`)).status).toBe(204);
    expect(code(await call(null, "POST", "/api/v1/invitations/accept", { token: again.body.token, password: "carol's long password" }))).toBe(
      "410 invitation_revoked",
    );

    // The platform admin (an account already) is invited to labs: its own password, not a new one.
    const inv = await call(bob, "POST", "/api/v1/invitations", { email: ADMIN.email, role: "viewer" });
    expect((await call(null, "POST", "/api/v1/invitations/lookup", { token: inv.body.token })).body.existingAccount).toBe(true);
    expect(code(await call(null, "POST", "/api/v1/invitations/accept", { token: inv.body.token, password: "not the admin's password" }))).toBe(
      "403 wrong_password",
    );
    const joined = session(await call(null, "POST", "/api/v1/invitations/accept", { token: inv.body.token, password: ADMIN.password }));
    expect((await call(joined, "GET", "/api/v1/me")).body).toMatchObject({ teamId: labsId, role: "viewer", platformAdmin: true });
    expect((await login(ADMIN.email, ADMIN.password)).body.teamId).toBe(acmeId); // still logs in to the team joined first

    const teams = (await call(admin, "GET", "/api/v1/me/teams")).body.teams;
    expect(teams).toMatchObject([
      { slug: "acme", role: "admin", current: true },
      { slug: "labs", role: "viewer", current: false },
    ]);
    const switched = await call(admin, "POST", "/api/v1/me/team", { teamId: labsId });
    expect(switched.body).toMatchObject({ teamId: labsId, role: "viewer" });
    expect((await call(admin, "GET", "/api/v1/me")).body.teamId).toBe(labsId);
    expect(code(await call(admin, "POST", "/api/v1/agents", { name: "x", model: "demo" }))).toBe("403 forbidden"); // a viewer there
    expect(code(await call(bob, "POST", "/api/v1/me/team", { teamId: acmeId }))).toBe("404 not_found"); // not bob's team
    expect(code(await call(bobKey, "POST", "/api/v1/me/team", { teamId: labsId }))).toBe("403 forbidden"); // a key has one team
    expect((await call(bobKey, "GET", "/api/v1/me/teams")).body.teams).toMatchObject([{ slug: "labs", current: true }]);
    expect((await call(admin, "POST", "/api/v1/me/team", { teamId: acmeId })).body.teamId).toBe(acmeId);
  });

  test("suspend: keys, logins and cookies answer 403 with the reason; queued runs wait, then run once resumed", async () => {
    const agent = await call(bobKey, "POST", "/api/v1/agents", { name: "helper", model: "demo" });
    const sessionId = (await call(bobKey, "POST", "/api/v1/sessions", { agentId: agent.body.id })).body.id;
    expect(code(await call(platformKey, "POST", `/api/v1/platform/teams/${acmeId}/suspend`, { reason: "own" }))).toBe("409 own_team");
    const stream = await fetch(`${server.url}/api/v1/sessions/${sessionId}/stream`, { headers: { authorization: `Bearer ${bobKey.key}` } });
    expect(stream.status).toBe(200);
    const s = await call(platformKey, "POST", `/api/v1/platform/teams/${labsId}/suspend`, { reason: "invoice 42 unpaid" });
    expect(s.body).toMatchObject({ slug: "labs", suspendedReason: "invoice 42 unpaid" });
    for (const a of [await call(bobKey, "GET", "/api/v1/agents"), await call(bob, "GET", "/api/v1/me"), await login(BOB.email, BOB.password)]) {
      expect(code(a)).toBe("403 team_suspended");
      expect(a.body.error.message).toContain("invoice 42 unpaid");
      expect(a.body.error.details).toMatchObject({ team: "labs", reason: "invoice 42 unpaid" });
    }
    // An open stream of the team ends at its next heartbeat, saying why.
    const frames = await readSse(stream, (seen) => seen.some((e) => e.event === "unauthorized"));
    expect(JSON.parse(frames.find((e) => e.event === "unauthorized")!.data).error.code).toBe("team_suspended");
    expect(code(await call(admin, "POST", "/api/v1/me/team", { teamId: labsId }))).toBe("403 team_suspended");
    expect((await call(admin, "GET", "/api/v1/me/teams")).body.teams[1]).toMatchObject({ slug: "labs", suspended: true });

    // A run queued meanwhile (through core: the API refuses the team) waits while another team's runs go on.
    const engine = new EngineClient({ pool });
    const waiting = await engine.postMessage({ teamId: labsId, sessionId, content: "while suspended" });
    const acmeAgent = await call(platformKey, "POST", "/api/v1/agents", { name: "acme-helper", model: "demo" });
    const acmeSession = await call(platformKey, "POST", "/api/v1/sessions", { agentId: acmeAgent.body.id });
    const acmeRun = await call(platformKey, "POST", `/api/v1/sessions/${acmeSession.body.id}/messages`, { content: "hi" });
    await waitFor(async () => (await call(platformKey, "GET", `/api/v1/runs/${acmeRun.body.runId}`)).body.status === "succeeded", { what: "acme's run" });
    expect((await engine.getRun({ teamId: labsId, runId: waiting.runId })).status).toBe("queued");

    expect((await call(platformKey, "POST", `/api/v1/platform/teams/${labsId}/resume`)).body.suspendedAt).toBeNull();
    expect((await call(bobKey, "GET", "/api/v1/agents")).status).toBe(200);
    expect((await call(bob, "GET", "/api/v1/me")).status).toBe(200);
    await waitFor(async () => (await call(bobKey, "GET", `/api/v1/runs/${waiting.runId}`)).body.status === "succeeded", { what: "the waiting run" });
  });

  test("platform admins: granted to an existing user; the last one cannot be revoked (409)", async () => {
    const admins = (await call(platformKey, "GET", "/api/v1/platform/admins")).body.admins;
    expect(admins.map((a: { email: string }) => a.email)).toEqual([ADMIN.email]);
    const last = await call(platformKey, "DELETE", `/api/v1/platform/admins/${admins[0].userId}`);
    expect(code(last)).toBe("409 last_platform_admin");
    expect(last.body.error.message).toMatch(/last platform admin/);
    expect(code(await call(platformKey, "POST", "/api/v1/platform/admins", { email: "nobody@example.com" }))).toBe("404 not_found");
    const granted = await call(platformKey, "POST", "/api/v1/platform/admins", { email: BOB.email });
    expect(granted.status).toBe(201);
    expect((await call(bob, "GET", "/api/v1/me")).body.platformAdmin).toBe(true);
    expect((await call(bob, "GET", "/api/v1/platform/teams")).status).toBe(200);
    expect((await call(bobKey, "GET", "/api/v1/platform/teams")).status).toBe(403); // not a platform key
    expect((await call(platformKey, "DELETE", `/api/v1/platform/admins/${granted.body.userId}`)).status).toBe(204);
    expect(code(await call(bob, "GET", "/api/v1/platform/teams"))).toBe("403 platform_admin_required");
  });

  test("delete: confirmed by the slug; sessions, agents, keys, secrets, members, invitations and logins go; audit rows stay", async () => {
    expect((await call(bobKey, "PUT", "/api/v1/secrets/LABS_TOKEN", { value: "labs-secret" })).status).toBe(204);
    await call(bobKey, "POST", "/api/v1/invitations", { email: "dave@labs.example", role: "member" });
    const wrong = await call(platformKey, "DELETE", `/api/v1/platform/teams/${labsId}`, { confirm: "acme" });
    expect(code(wrong)).toBe("422 validation_failed");
    expect(code(await call(platformKey, "DELETE", `/api/v1/platform/teams/${acmeId}`, { confirm: "acme" }))).toBe("409 own_team");
    expect((await call(platformKey, "DELETE", `/api/v1/platform/teams/${labsId}`, { confirm: "labs" })).status).toBe(204);
    expect(code(await call(bob, "GET", "/api/v1/me"))).toBe("401 unauthorized");
    expect(code(await call(bobKey, "GET", "/api/v1/me"))).toBe("401 unauthorized");
    expect(code(await login(BOB.email, BOB.password))).toBe("401 unauthorized"); // in no team now
    for (const t of ["sessions", "runs", "agents", "api_keys", "secrets", "memberships", "invitations", "web_sessions", "sandboxes"]) {
      const n = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t} WHERE team_id = $1`, [labsId]);
      expect(n.rows[0]!.n, t).toBe(0);
    }
    const audit = await pool.query<{ action: string }>("SELECT action FROM audit_log WHERE team_id = $1 ORDER BY id", [labsId]);
    expect(audit.rows.map((r) => r.action)).toEqual(expect.arrayContaining(["team.create", "team.rename", "member.join", "team.suspend", "team.delete"]));
    expect((await pool.query("SELECT 1 FROM users WHERE email = $1", [BOB.email])).rowCount).toBe(1); // the account stays
    expect(code(await call(platformKey, "DELETE", `/api/v1/platform/teams/${labsId}`, { confirm: "labs" }))).toBe("404 not_found");
    expect((await call(admin, "GET", "/api/v1/me/teams")).body.teams).toMatchObject([{ slug: "acme" }]);
  });
});
