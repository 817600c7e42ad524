// Every write a principal makes through a core service checks its role and writes its audit row in
// the change's own transaction: both commit or neither does. The rollback half is shown by making
// the audit insert fail (a CHECK this file adds to audit_log for one actor) and finding the change
// gone. The audit rows themselves keep the actions, targets and details the routes used to write.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Accounts } from "../src/access/accounts.js";
import { verifyPassword } from "../src/access/passwords.js";
import type { Principal } from "../src/access/principal.js";
import { decideToolCall } from "../src/engine/approvals.js";
import { claimRun, parkRun } from "../src/engine/lifecycle.js";
import { ledgerKey } from "../src/engine/types.js";
import { Secrets } from "../src/secrets.js";
import { SessionSandboxes } from "../src/sandbox/view.js";
import { SandboxStore } from "../src/sandbox/store.js";
import { useFixture } from "./fixture.js";

const f = useFixture();
let accounts: Accounts;
let secrets: Secrets;
let admin: Principal;
/** Passes every role check; its audit rows violate the CHECK below, so its writes must roll back. */
let refused: Principal;
const REFUSED_ACTOR = "user:refused@acme.test";

beforeAll(async () => {
  accounts = new Accounts({ pool: f.pool });
  secrets = new Secrets({ pool: f.pool, keyBase64: randomBytes(32).toString("base64") });
  await accounts.bootstrapAdmin({ email: "admin@acme.test", password: "correct horse battery", teamSlug: "acme", teamName: "Acme" });
  admin = (await accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.0.0.1" })).principal;
  refused = { ...admin, actor: REFUSED_ACTOR };
  await f.pool.query(`ALTER TABLE audit_log ADD CONSTRAINT audit_test_refuse CHECK (actor NOT LIKE 'user:refused%')`);
});

afterAll(async () => {
  await f.pool?.query("ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_test_refuse");
});

type Row = { actor: string; action: string; target: string | null; details: unknown };
async function auditRows(action: string, target?: string): Promise<Row[]> {
  const { rows } = await f.pool.query<Row>(
    "SELECT actor, action, target, details FROM audit_log WHERE team_id = $1 AND action = $2 AND ($3::text IS NULL OR target = $3) ORDER BY id",
    [f.teamId, action, target ?? null],
  );
  return rows;
}
const one = async (sql: string, values: unknown[]) => (await f.pool.query(sql, values)).rows[0] as Record<string, unknown> | undefined;
const CHECK_VIOLATION = { code: "23514" };

async function newSession(): Promise<string> {
  return (await f.tenancy.createSession(f.teamId, { agentId: f.agentId })).id;
}

/** A run parked on a tool call that needs approval: claimed, its intent on the ledger, waiting_approval. */
async function parkedCall(sessionId: string, callId: string): Promise<string> {
  const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "deploy" });
  const claim = await claimRun(f.pool, "audit-test", 30_000);
  expect(claim?.id).toBe(runId);
  await f.pool.query("INSERT INTO tool_calls (run_id, call_id, idempotency_key, name, arguments, epoch) VALUES ($1, $2, $3, 'deploy', '{}', $4)", [
    runId,
    callId,
    ledgerKey(runId, callId),
    claim!.epoch,
  ]);
  expect(await parkRun(f.pool, claim!)).toBe(true);
  return runId;
}

describe("a refused audit row rolls the change back", () => {
  test("agent create, update, delete", async () => {
    await expect(f.tenancy.createAgent(refused, { name: "never", model: "demo" })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT 1 FROM agents WHERE team_id = $1 AND name = 'never'", [f.teamId])).toBeUndefined();

    const agent = await f.tenancy.createAgent(admin, { name: "kept", model: "demo" });
    await expect(f.tenancy.updateAgent(refused, agent.id, { model: "demo", instructions: "changed" })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT current_version FROM agents WHERE id = $1", [agent.id])).toEqual({ current_version: 1 });
    expect(await one("SELECT count(*)::int AS n FROM agent_versions WHERE agent_id = $1", [agent.id])).toEqual({ n: 1 });

    await expect(f.tenancy.deleteAgent(refused, agent.id)).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT deleted_at, name FROM agents WHERE id = $1", [agent.id])).toEqual({ deleted_at: null, name: "kept" });
  });

  test("session create, archive, cancel, delete", async () => {
    const before = await one("SELECT count(*)::int AS n FROM sessions WHERE team_id = $1", [f.teamId]);
    await expect(f.tenancy.createSession(refused, { agentId: f.agentId })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT count(*)::int AS n FROM sessions WHERE team_id = $1", [f.teamId])).toEqual(before);

    const sessionId = await newSession();
    await expect(f.tenancy.setArchived(refused, sessionId, true)).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT status FROM sessions WHERE id = $1", [sessionId])).toEqual({ status: "idle" });

    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId, content: "hello" });
    await expect(f.client.cancel({ by: refused, sessionId })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT status FROM runs WHERE id = $1", [runId])).toEqual({ status: "queued" });

    await expect(f.tenancy.deleteSession(refused, sessionId)).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT deleted_at FROM sessions WHERE id = $1", [sessionId])).toEqual({ deleted_at: null });
    expect(await one("SELECT status FROM runs WHERE id = $1", [runId])).toEqual({ status: "queued" });
  });

  test("a tool-call decision", async () => {
    const sessionId = await newSession();
    const runId = await parkedCall(sessionId, "r1");
    await expect(decideToolCall(f.pool, { by: refused, sessionId, callId: "r1", approve: true })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT status FROM runs WHERE id = $1", [runId])).toEqual({ status: "waiting_approval" });
    expect(await one("SELECT approval FROM tool_calls WHERE run_id = $1", [runId])).toEqual({ approval: null });
    expect(await one("SELECT count(*)::int AS n FROM session_events WHERE session_id = $1 AND type = 'approval_decided'", [sessionId])).toEqual({ n: 0 });
  });

  test("secret put and delete", async () => {
    await expect(secrets.put(refused, "NEVER_STORED", "v")).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT 1 FROM secrets WHERE team_id = $1 AND name = 'NEVER_STORED'", [f.teamId])).toBeUndefined();
    await secrets.put(admin, "KEPT", "v1");
    await expect(secrets.put(refused, "KEPT", "v2")).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await secrets.resolve(f.teamId, ["KEPT"])).toEqual({ KEPT: "v1" });
    await expect(secrets.remove(refused, "KEPT")).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await secrets.resolve(f.teamId, ["KEPT"])).toEqual({ KEPT: "v1" });
  });

  test("API key create and revoke", async () => {
    await expect(accounts.createApiKey(refused, { name: "never", role: "viewer" })).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT 1 FROM api_keys WHERE team_id = $1 AND name = 'never'", [f.teamId])).toBeUndefined();
    const k = await accounts.createApiKey(admin, { name: "kept", role: "viewer" });
    await expect(accounts.revokeApiKey(refused, k.id)).rejects.toMatchObject(CHECK_VIOLATION);
    expect((await accounts.authenticateApiKey(k.key)).apiKeyId).toBe(k.id);
  });

  test("member add, role change, removal", async () => {
    await expect(accounts.addMember(refused, { email: "never@acme.test", password: "a long first password", role: "viewer" })).rejects.toMatchObject(
      CHECK_VIOLATION,
    );
    expect(await one("SELECT 1 FROM users WHERE email = 'never@acme.test'", [])).toBeUndefined();

    const { userId } = await accounts.addMember(admin, { email: "kept@acme.test", password: "a long first password", role: "member" });
    await expect(accounts.setMemberRole(refused, userId, "viewer")).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT role FROM memberships WHERE team_id = $1 AND user_id = $2", [f.teamId, userId])).toEqual({ role: "member" });
    await expect(accounts.removeMember(refused, userId)).rejects.toMatchObject(CHECK_VIOLATION);
    expect(await one("SELECT role FROM memberships WHERE team_id = $1 AND user_id = $2", [f.teamId, userId])).toEqual({ role: "member" });
  });

  test("login and password change", async () => {
    const { userId } = await accounts.addMember(admin, { email: "refused@acme.test", password: "refused's first password", role: "viewer" });
    // The login's principal is this user's: its audit row is refused, so no dashboard session is opened.
    await expect(accounts.login({ email: "refused@acme.test", password: "refused's first password", clientAddress: "10.3.0.1" })).rejects.toMatchObject(
      CHECK_VIOLATION,
    );
    expect(await one("SELECT count(*)::int AS n FROM web_sessions WHERE user_id = $1", [userId])).toEqual({ n: 0 });

    const self: Principal = { teamId: f.teamId, role: "viewer", actor: REFUSED_ACTOR, userId, apiKeyId: null };
    await expect(
      accounts.changePassword(self, { currentPassword: "refused's first password", newPassword: "refused's second password" }),
    ).rejects.toMatchObject(CHECK_VIOLATION);
    const { rows } = await f.pool.query("SELECT password_hash FROM users WHERE id = $1", [userId]);
    expect(await verifyPassword("refused's first password", rows[0].password_hash)).toBe(true);
  });
});

describe("the audit rows services write", () => {
  test("each write leaves one row with the action, target and details the audit view reads", async () => {
    const agent = await f.tenancy.createAgent(admin, { name: "audited", model: "demo" });
    const v2 = await f.tenancy.updateAgent(admin, agent.id, { model: "demo", instructions: "v2" });
    const session = await f.tenancy.createSession(admin, { agentId: agent.id });
    await f.tenancy.setArchived(admin, session.id, true);
    await f.tenancy.setArchived(admin, session.id, false);
    const { runId } = await f.client.postMessage({ teamId: f.teamId, sessionId: session.id, content: "hi" });
    const cancelled = await f.client.cancel({ by: admin, sessionId: session.id });
    expect(cancelled).toEqual({ cancelled: [runId], stopping: [] });
    await f.tenancy.deleteSession(admin, session.id);
    await f.tenancy.deleteAgent(admin, agent.id);
    await secrets.put(admin, "AUDITED", "the value", ["api.example.com"]);
    await secrets.remove(admin, "AUDITED");
    const key = await accounts.createApiKey(admin, { name: "audited", role: "viewer" });
    await accounts.revokeApiKey(admin, key.id);
    const { userId } = await accounts.addMember(admin, { email: "Audited@acme.test", password: "audited's first password", role: "viewer" });
    await accounts.setMemberRole(admin, userId, "member");
    await accounts.removeMember(admin, userId);

    const actor = admin.actor;
    expect(await auditRows("agent.create", agent.id)).toEqual([{ actor, action: "agent.create", target: agent.id, details: { name: "audited" } }]);
    expect(await auditRows("agent.update", agent.id)).toEqual([{ actor, action: "agent.update", target: agent.id, details: { version: v2.version } }]);
    expect(await auditRows("agent.delete", agent.id)).toEqual([{ actor, action: "agent.delete", target: agent.id, details: {} }]);
    expect(await auditRows("session.create", session.id)).toEqual([{ actor, action: "session.create", target: session.id, details: { agentId: agent.id } }]);
    expect(await auditRows("session.archive", session.id)).toEqual([{ actor, action: "session.archive", target: session.id, details: {} }]);
    expect(await auditRows("session.unarchive", session.id)).toEqual([{ actor, action: "session.unarchive", target: session.id, details: {} }]);
    expect(await auditRows("session.cancel", session.id)).toEqual([
      { actor, action: "session.cancel", target: session.id, details: { cancelled: [runId], stopping: [] } },
    ]);
    expect(await auditRows("session.delete", session.id)).toEqual([{ actor, action: "session.delete", target: session.id, details: {} }]);
    expect(await auditRows("secret.put", "AUDITED")).toEqual([
      { actor, action: "secret.put", target: "AUDITED", details: { allowedHosts: ["api.example.com"] } },
    ]);
    expect(await auditRows("secret.delete", "AUDITED")).toEqual([{ actor, action: "secret.delete", target: "AUDITED", details: {} }]);
    expect(await auditRows("api_key.create", key.id)).toEqual([
      { actor, action: "api_key.create", target: key.id, details: { name: "audited", role: "viewer", prefix: key.prefix, platform: false } },
    ]);
    expect(await auditRows("api_key.revoke", key.id)).toEqual([{ actor, action: "api_key.revoke", target: key.id, details: {} }]);
    expect(await auditRows("member.add", userId)).toEqual([
      { actor, action: "member.add", target: userId, details: { email: "Audited@acme.test", role: "viewer" } },
    ]);
    expect(await auditRows("member.role", userId)).toEqual([{ actor, action: "member.role", target: userId, details: { role: "member", keysRevoked: 0 } }]);
    expect(await auditRows("member.remove", userId)).toEqual([{ actor, action: "member.remove", target: userId, details: { keysRevoked: 0 } }]);
    // Neither a secret's value nor a key nor a password is ever in the log.
    const all = JSON.stringify((await f.pool.query("SELECT actor, action, target, details FROM audit_log")).rows);
    for (const s of ["the value", key.key, "audited's first password"]) expect(all).not.toContain(s);
  });

  test("login, password change and a tool-call decision are audited as the person who did them", async () => {
    const { userId } = await accounts.addMember(admin, { email: "sam@acme.test", password: "sam's first password", role: "member" });
    const sam = await accounts.login({ email: "sam@acme.test", password: "sam's first password", clientAddress: "10.3.0.2" });
    await accounts.changePassword(sam.principal, {
      currentPassword: "sam's first password",
      newPassword: "sam's second password",
      keepSessionToken: sam.token,
    });
    expect(await auditRows("auth.login", userId)).toEqual([{ actor: "user:sam@acme.test", action: "auth.login", target: userId, details: {} }]);
    expect(await auditRows("user.password", userId)).toEqual([{ actor: "user:sam@acme.test", action: "user.password", target: userId, details: {} }]);

    const sessionId = await newSession();
    await parkedCall(sessionId, "a1");
    await decideToolCall(f.pool, { by: sam.principal, sessionId, callId: "a1", approve: false, reason: "not today" });
    expect(await auditRows("tool_call.deny", sessionId)).toEqual([
      { actor: "user:sam@acme.test", action: "tool_call.deny", target: sessionId, details: { callId: "a1" } },
    ]);
    const decided = await one("SELECT payload FROM session_events WHERE session_id = $1 AND type = 'approval_decided'", [sessionId]);
    expect(decided?.payload).toMatchObject({ callId: "a1", decision: "denied", decidedBy: "user:sam@acme.test" });
  });

  test("a sandbox start that fails is not audited (a start that works: sandbox/view.test.ts)", async () => {
    // No driver in this process: the start fails before anything changes.
    const view = new SessionSandboxes({ db: f.pool, store: new SandboxStore(f.pool) });
    const sessionId = await newSession();
    await expect(view.start(admin, sessionId)).rejects.toMatchObject({ status: 503 });
    expect(await auditRows("sandbox.start", sessionId)).toEqual([]);
  });

  test("the operator's own calls (a team id, no principal) write no audit row", async () => {
    const before = await one("SELECT count(*)::int AS n FROM audit_log", []);
    const agent = await f.tenancy.createAgent(f.teamId, { name: "seeded", model: "demo" });
    const s = await f.tenancy.createSession(f.teamId, { agentId: agent.id });
    await f.client.cancel({ teamId: f.teamId, sessionId: s.id });
    await f.tenancy.deleteSession(f.teamId, s.id);
    await secrets.putForTeam(f.teamId, "SEEDED", "v");
    expect(await one("SELECT count(*)::int AS n FROM audit_log", [])).toEqual(before);
  });
});

describe("services check the role themselves", () => {
  test("a viewer cannot write sessions or decide; a member cannot delete agents or manage keys, members and secrets", async () => {
    const viewer: Principal = { ...admin, role: "viewer", actor: "user:viewer@acme.test" };
    const member: Principal = { ...admin, role: "member", actor: "user:member@acme.test" };
    const sessionId = await newSession();
    const forbidden = { status: 403 };
    await expect(f.tenancy.createSession(viewer, { agentId: f.agentId })).rejects.toMatchObject(forbidden);
    await expect(f.tenancy.setArchived(viewer, sessionId, true)).rejects.toMatchObject(forbidden);
    await expect(f.tenancy.deleteSession(viewer, sessionId)).rejects.toMatchObject(forbidden);
    await expect(f.client.cancel({ by: viewer, sessionId })).rejects.toMatchObject(forbidden);
    await expect(decideToolCall(f.pool, { by: viewer, sessionId, callId: "x", approve: true })).rejects.toMatchObject(forbidden);
    await expect(new SessionSandboxes({ db: f.pool, store: new SandboxStore(f.pool) }).start(viewer, sessionId)).rejects.toMatchObject(forbidden);
    await expect(f.tenancy.deleteAgent(member, f.agentId)).rejects.toMatchObject(forbidden);
    await expect(accounts.createApiKey(member, { name: "m", role: "viewer" })).rejects.toMatchObject(forbidden);
    await expect(accounts.addMember(member, { email: "m2@acme.test", password: "a long first password", role: "viewer" })).rejects.toMatchObject(forbidden);
    await expect(secrets.put(member, "MINE", "v")).rejects.toMatchObject(forbidden);
    expect(await one("SELECT status, deleted_at FROM sessions WHERE id = $1", [sessionId])).toEqual({ status: "idle", deleted_at: null });
    expect(await one("SELECT count(*)::int AS n FROM audit_log WHERE actor IN ('user:viewer@acme.test', 'user:member@acme.test')", [])).toEqual({ n: 0 });
  });
});
