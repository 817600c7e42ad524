// Accounts, API keys, roles, secrets, audit and the catalog, against a real database.
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, test } from "vitest";
import { Accounts, TooManyAttemptsError } from "../src/access/accounts.js";
import { hashPassword, verifyPassword } from "../src/access/passwords.js";
import type { Principal } from "../src/access/principal.js";
import { clientAddress, parseTrustedProxies } from "../src/access/client-address.js";
import { audit, listAudit } from "../src/audit.js";
import { listSessions, fleetStatus } from "../src/catalog.js";
import { Secrets } from "../src/secrets.js";
import { useFixture } from "./fixture.js";

const f = useFixture();
let accounts: Accounts;
let admin: Principal;

beforeAll(async () => {
  accounts = new Accounts({ pool: f.pool, maxFailedLogins: 3 });
  await accounts.bootstrapAdmin({ email: "Admin@Acme.test", password: "correct horse battery", teamSlug: "acme", teamName: "Acme" });
  admin = (await accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.0.0.1" })).principal;
});

describe("passwords and logins", () => {
  test("scrypt hashes verify, differ per salt, and never contain the password", async () => {
    const a = await hashPassword("a long enough password");
    const b = await hashPassword("a long enough password");
    expect(a).not.toBe(b);
    expect(a).not.toContain("a long enough password");
    expect(await verifyPassword("a long enough password", a)).toBe(true);
    expect(await verifyPassword("a long enough passworD", a)).toBe(false);
  });

  test("bootstrap is idempotent and the admin logs in to the bootstrapped team", async () => {
    const again = await accounts.bootstrapAdmin({ email: "admin@acme.test", password: "another password!", teamSlug: "acme", teamName: "Acme" });
    expect(again).toEqual({ created: false, teamId: f.teamId });
    expect(admin).toMatchObject({ teamId: f.teamId, role: "admin", actor: "user:admin@acme.test" });
  });

  test("sessions need the CSRF token for state changes; logout ends them", async () => {
    const s = await accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.0.0.2" });
    await expect(accounts.authenticateSession(s.token, { required: true, header: null })).rejects.toMatchObject({ status: 403, code: "csrf_failed" });
    await expect(accounts.authenticateSession(s.token, { required: true, header: "wrong" })).rejects.toMatchObject({ status: 403 });
    expect((await accounts.authenticateSession(s.token, { required: true, header: s.csrfToken })).teamId).toBe(f.teamId);
    await accounts.logout(s.token);
    await expect(accounts.authenticateSession(s.token)).rejects.toMatchObject({ status: 401 });
  });

  test("failed logins are limited per (account, address), even with the right password afterwards; other addresses still log in", async () => {
    const addr = "10.9.9.9";
    for (let i = 0; i < 3; i++)
      await expect(accounts.login({ email: "admin@acme.test", password: "nope nope nope", clientAddress: addr })).rejects.toMatchObject({ status: 401 });
    await expect(accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: addr })).rejects.toBeInstanceOf(
      TooManyAttemptsError,
    );
    // Someone else's failures never refuse the right password from another address.
    expect((await accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.9.9.10" })).principal.role).toBe("admin");
  });

  test("one address spraying many accounts is limited as a whole", async () => {
    const sprayed = new Accounts({ pool: f.pool, maxFailedLogins: 3, maxFailedLoginsPerAddress: 5 });
    const addr = "10.8.8.8";
    for (let i = 0; i < 5; i++)
      await expect(sprayed.login({ email: `u${i}@acme.test`, password: "nope nope nope", clientAddress: addr })).rejects.toMatchObject({ status: 401 });
    await expect(sprayed.login({ email: "u9@acme.test", password: "nope nope nope", clientAddress: addr })).rejects.toMatchObject({ status: 429 });
    await expect(sprayed.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: addr })).rejects.toMatchObject({ status: 429 });
    expect((await sprayed.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.8.8.9" })).principal.role).toBe("admin");
  });

  test("failures older than the window are pruned; newer ones stay and still count", async () => {
    await f.pool.query("INSERT INTO login_attempts (key, created_at) VALUES ('addr:10.4.0.1', now() - interval '1 hour'), ('addr:10.4.0.1', now())");
    expect(await accounts.pruneLoginAttempts()).toBeGreaterThanOrEqual(1);
    const { rows } = await f.pool.query(
      "SELECT count(*)::int AS n, min(created_at) > now() - interval '15 minutes' AS fresh FROM login_attempts WHERE key = 'addr:10.4.0.1'",
    );
    expect(rows[0]).toEqual({ n: 1, fresh: true });
  });

  test("a user changes their own password: the current one is checked, their other logins end, keys cannot", async () => {
    const { userId } = await accounts.addMember(admin, { email: "pat@acme.test", password: "pat's first password", role: "viewer" });
    const a = await accounts.login({ email: "pat@acme.test", password: "pat's first password", clientAddress: "10.7.0.1" });
    const b = await accounts.login({ email: "pat@acme.test", password: "pat's first password", clientAddress: "10.7.0.1" });
    const pat = a.principal;
    await expect(accounts.changePassword(pat, { currentPassword: "wrong wrong wrong", newPassword: "pat's second password" })).rejects.toMatchObject({
      status: 403,
      code: "wrong_password",
    });
    await expect(accounts.changePassword(pat, { currentPassword: "pat's first password", newPassword: "short" })).rejects.toMatchObject({ status: 422 });
    await accounts.changePassword(pat, { currentPassword: "pat's first password", newPassword: "pat's second password", keepSessionToken: a.token });
    await expect(accounts.authenticateSession(b.token)).rejects.toMatchObject({ status: 401 });
    expect((await accounts.authenticateSession(a.token)).userId).toBe(userId);
    await expect(accounts.login({ email: "pat@acme.test", password: "pat's first password", clientAddress: "10.7.0.2" })).rejects.toMatchObject({
      status: 401,
    });
    await accounts.login({ email: "pat@acme.test", password: "pat's second password", clientAddress: "10.7.0.2" });
    const k = await accounts.createApiKey(admin, { name: "pw", role: "admin" });
    await expect(
      accounts.changePassword(await accounts.authenticateApiKey(k.key), { currentPassword: "correct horse battery", newPassword: "x".repeat(20) }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("client address", () => {
  test("the socket peer counts; X-Forwarded-For only from trusted proxies, read from the right", () => {
    const trusted = parseTrustedProxies("10.0.0.0/8, 192.168.1.7, fd00::/8");
    expect(clientAddress("203.0.113.1", "198.51.100.9", trusted)).toBe("203.0.113.1");
    expect(clientAddress("203.0.113.1", "198.51.100.9", null)).toBe("203.0.113.1");
    expect(clientAddress("::ffff:10.1.2.3", "198.51.100.9", trusted)).toBe("198.51.100.9");
    expect(clientAddress("10.1.2.3", "6.6.6.6, 198.51.100.9, 192.168.1.7", trusted)).toBe("198.51.100.9");
    expect(clientAddress("10.1.2.3", "10.2.2.2, 10.3.3.3", trusted)).toBe("10.2.2.2");
    expect(clientAddress("10.1.2.3", "garbage", trusted)).toBe("10.1.2.3");
    expect(clientAddress("fd00::1", "2001:db8::5", trusted)).toBe("2001:db8::5");
    expect(clientAddress(undefined, "198.51.100.9", trusted)).toBe("unknown");
    for (const bad of ["10.0.0.0/33", "nope", "10.0.0.1/8/1", "fd00::/129"]) expect(() => parseTrustedProxies(bad)).toThrow(/not an IP address or CIDR/);
  });
});

describe("API keys and roles", () => {
  test("a key is shown once, stored hashed, works until revoked; roles are enforced", async () => {
    const k = await accounts.createApiKey(admin, { name: "ci", role: "viewer" });
    const { rows } = await f.pool.query("SELECT hash FROM api_keys WHERE id = $1", [k.id]);
    expect(rows[0].hash).not.toContain(k.key);
    expect(JSON.stringify(await accounts.listApiKeys(admin))).not.toContain(k.key);
    const viewer = await accounts.authenticateApiKey(k.key);
    expect(viewer).toMatchObject({ teamId: f.teamId, role: "viewer", actor: `api_key:${k.prefix}` });
    await expect(accounts.createApiKey(viewer, { name: "x", role: "admin" })).rejects.toMatchObject({ status: 403 });
    await accounts.revokeApiKey(admin, k.id);
    await expect(accounts.authenticateApiKey(k.key)).rejects.toMatchObject({ status: 401 });
  });

  test("keys record their creator; demoting or removing the creator revokes their keys in the same change", async () => {
    const { userId } = await accounts.addMember(admin, { email: "kim@acme.test", password: "kim's long password", role: "admin" });
    const kim = (await accounts.login({ email: "kim@acme.test", password: "kim's long password", clientAddress: "10.6.0.1" })).principal;
    const high = await accounts.createApiKey(kim, { name: "kim-admin", role: "admin" });
    const low = await accounts.createApiKey(kim, { name: "kim-member", role: "member" });
    const chained = await accounts.createApiKey(await accounts.authenticateApiKey(high.key), { name: "kim-chained", role: "viewer" });
    const mine = (await accounts.listApiKeys(admin)).filter((k) => k.name.startsWith("kim-"));
    expect(mine.map((k) => k.createdBy)).toEqual([
      { userId, email: "kim@acme.test" },
      { userId, email: "kim@acme.test" },
      { userId, email: "kim@acme.test" },
    ]);
    await accounts.setMemberRole(admin, userId, "member");
    await expect(accounts.authenticateApiKey(high.key)).rejects.toMatchObject({ status: 401 });
    expect((await accounts.authenticateApiKey(low.key)).role).toBe("member");
    expect((await accounts.authenticateApiKey(chained.key)).role).toBe("viewer");
    await accounts.removeMember(admin, userId);
    for (const k of [low, chained]) await expect(accounts.authenticateApiKey(k.key)).rejects.toMatchObject({ status: 401 });
    const reasons = Object.fromEntries((await accounts.listApiKeys(admin)).filter((k) => k.name.startsWith("kim-")).map((k) => [k.name, k.revokedReason]));
    expect(reasons).toEqual({ "kim-admin": "creator_demoted", "kim-member": "creator_removed", "kim-chained": "creator_removed" });
  });

  test("a key whose creator lost the role outside these paths stops working too", async () => {
    const { userId } = await accounts.addMember(admin, { email: "lee@acme.test", password: "lee's long password", role: "admin" });
    const lee = (await accounts.login({ email: "lee@acme.test", password: "lee's long password", clientAddress: "10.6.0.2" })).principal;
    const k = await accounts.createApiKey(lee, { name: "lee-admin", role: "admin" });
    await f.pool.query("UPDATE memberships SET role = 'viewer' WHERE user_id = $1", [userId]);
    await expect(accounts.authenticateApiKey(k.key)).rejects.toMatchObject({ status: 401 });
  });

  test("another team's key cannot be revoked: answered as missing", async () => {
    const other = await f.tenancy.createTeam({ slug: "other-k", name: "O" });
    const { rows } = await f.pool.query("INSERT INTO api_keys (team_id, name, prefix, hash) VALUES ($1, 'x', 'kk_x', $2) RETURNING id", [
      other.id,
      randomBytes(8).toString("hex"),
    ]);
    await expect(accounts.revokeApiKey(admin, rows[0].id)).rejects.toMatchObject({ status: 404 });
  });
});

describe("members", () => {
  test("roles change at once; removal ends the member's logins; the last admin stays; other teams' members look missing", async () => {
    const { userId } = await accounts.addMember(admin, { email: "mia@acme.test", password: "mia's long password", role: "member" });
    const mia = await accounts.login({ email: "mia@acme.test", password: "mia's long password", clientAddress: "10.1.0.1" });
    await expect(accounts.setMemberRole(mia.principal, userId, "admin")).rejects.toMatchObject({ status: 403 });

    expect(await accounts.setMemberRole(admin, userId, "viewer")).toEqual({ userId, role: "viewer", keysRevoked: 0 });
    expect(await accounts.authenticateSession(mia.token)).toMatchObject({ role: "viewer" }); // the next request sees it
    await expect(accounts.setMemberRole(admin, userId, "owner" as never)).rejects.toMatchObject({ status: 422 });

    // The only admin can be neither demoted nor removed, by anyone.
    await expect(accounts.setMemberRole(admin, admin.userId!, "member")).rejects.toMatchObject({ status: 409, code: "last_admin" });
    await expect(accounts.removeMember(admin, admin.userId!)).rejects.toMatchObject({ status: 409, code: "last_admin" });
    // With a second admin, two concurrent demotions cannot both win.
    await accounts.setMemberRole(admin, userId, "admin");
    const results = await Promise.allSettled([accounts.setMemberRole(admin, userId, "member"), accounts.setMemberRole(admin, admin.userId!, "member")]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const { rows } = await f.pool.query("SELECT count(*)::int AS n FROM memberships WHERE team_id = $1 AND role = 'admin'", [f.teamId]);
    expect(rows[0].n).toBe(1);
    const stillAdmin = (await accounts.listMembers(admin)).find((m) => m.role === "admin")!;
    const boss: Principal = { ...admin, userId: stillAdmin.userId };

    const other = await f.tenancy.createTeam({ slug: "other-m", name: "O" });
    const { rows: u } = await f.pool.query("INSERT INTO users (email, password_hash) VALUES ('x@other.test', 'h') RETURNING id");
    await f.pool.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, 'member')", [other.id, u[0].id]);
    await expect(accounts.removeMember(boss, u[0].id)).rejects.toMatchObject({ status: 404 });
    await expect(accounts.setMemberRole(boss, u[0].id, "viewer")).rejects.toMatchObject({ status: 404 });
    await expect(accounts.removeMember(boss, "not-a-uuid")).rejects.toMatchObject({ status: 404 });

    const loser = stillAdmin.userId === userId ? admin.userId! : userId;
    const loserLogin =
      loser === userId ? mia : await accounts.login({ email: "admin@acme.test", password: "correct horse battery", clientAddress: "10.1.0.2" });
    await accounts.removeMember(boss, loser);
    await expect(accounts.authenticateSession(loserLogin.token)).rejects.toMatchObject({ status: 401 });
    expect((await accounts.listMembers(boss)).map((m) => m.userId)).not.toContain(loser);
    const { rows: ws } = await f.pool.query("SELECT count(*)::int AS n FROM web_sessions WHERE user_id = $1 AND team_id = $2", [loser, f.teamId]);
    expect(ws[0].n).toBe(0);
  });
});

describe("adding members", () => {
  test("an email with an account in another team joins with its own password; the answer is the same as for a new email", async () => {
    const other = await f.tenancy.createTeam({ slug: "other-add", name: "O" });
    const elsewhere = await accounts.bootstrapAdmin({ email: "ola@other.test", password: "ola's own password", teamSlug: other.slug, teamName: "O" });
    expect(elsewhere.created).toBe(true);
    const added = await accounts.addMember(admin, { email: "ola@other.test", password: "a password admin chose", role: "viewer" });
    const fresh = await accounts.addMember(admin, { email: "new@acme.test", password: "a password admin chose", role: "viewer" });
    expect(Object.keys(added)).toEqual(Object.keys(fresh));
    await expect(accounts.login({ email: "ola@other.test", password: "a password admin chose", clientAddress: "10.5.0.1" })).rejects.toMatchObject({
      status: 401,
    });
    expect((await accounts.login({ email: "ola@other.test", password: "ola's own password", clientAddress: "10.5.0.1" })).principal.teamId).toBe(other.id);
    expect((await accounts.listMembers(admin)).map((m) => m.email)).toContain("ola@other.test");
    await expect(accounts.addMember(admin, { email: "ola@other.test", password: "a password admin chose", role: "viewer" })).rejects.toMatchObject({
      status: 409,
      code: "member_exists",
    });
  });
});

describe("secrets", () => {
  const key = randomBytes(32).toString("base64");
  test("encrypted at rest, write-only, decryptable only for the owning team", async () => {
    const secrets = new Secrets({ pool: f.pool, keyBase64: key });
    await secrets.put(admin, "GITHUB_TOKEN", "ghp_supersecretvalue");
    const { rows } = await f.pool.query("SELECT ciphertext FROM secrets WHERE name = 'GITHUB_TOKEN'");
    expect(Buffer.from(rows[0].ciphertext).toString("latin1")).not.toContain("supersecret");
    expect(JSON.stringify(await secrets.list(admin))).not.toContain("supersecret");
    expect(await secrets.resolve(f.teamId, ["GITHUB_TOKEN", "MISSING"])).toEqual({ GITHUB_TOKEN: "ghp_supersecretvalue" });
    // A ciphertext moved to another team does not decrypt there (team and name are authenticated).
    const other = await f.tenancy.createTeam({ slug: "other-s", name: "O" });
    await f.pool.query("INSERT INTO secrets (team_id, name, ciphertext, iv, tag) SELECT $1, name, ciphertext, iv, tag FROM secrets WHERE team_id = $2", [
      other.id,
      f.teamId,
    ]);
    await expect(secrets.resolve(other.id, ["GITHUB_TOKEN"])).rejects.toMatchObject({
      status: 503,
      message: expect.stringMatching(/GITHUB_TOKEN cannot be decrypted/),
    });
    await expect(secrets.put(admin, "lower case", "v")).rejects.toMatchObject({ status: 422 });
    await expect(new Secrets({ pool: f.pool }).put(admin, "X", "v")).rejects.toMatchObject({ status: 503 });
  });
});

describe("audit and catalog", () => {
  test("audit entries are listed newest first with a cursor", async () => {
    // A team of its own: the services audit every write this file makes for acme.
    const team = await f.tenancy.createTeam({ slug: "audit-list", name: "A" });
    const own: Principal = { ...admin, teamId: team.id };
    for (let i = 0; i < 5; i++) await audit(f.pool, own, "agent.update", `agent-${i}`);
    const first = await listAudit(f.pool, own, { limit: 3 });
    expect(first.entries.map((e) => e.target)).toEqual(["agent-4", "agent-3", "agent-2"]);
    const second = await listAudit(f.pool, own, { limit: 3, before: first.nextCursor! });
    expect(second.entries.map((e) => e.target)).toEqual(["agent-1", "agent-0"]);
    await expect(listAudit(f.pool, own, { before: "x'; --" })).rejects.toMatchObject({ status: 422 });
  });

  test("sessions list: keyset pages cover everything once; filters; bad cursor is 422", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 7; i++) ids.add((await f.tenancy.createSession(f.teamId, { agentId: f.agentId, title: i === 3 ? "Needle 100%" : `s${i}` })).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await listSessions(f.pool, f.teamId, { limit: 3, cursor });
      seen.push(...page.sessions.map((s) => s.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect(seen).toContain(id);
    expect((await listSessions(f.pool, f.teamId, { q: "needle 100%" })).sessions.map((s) => s.title)).toEqual(["Needle 100%"]);
    expect((await listSessions(f.pool, f.teamId, { q: "%" })).sessions.map((s) => s.title)).toEqual(["Needle 100%"]);
    await expect(listSessions(f.pool, f.teamId, { cursor: "garbage" })).rejects.toMatchObject({ status: 422 });
    const other = await f.tenancy.createTeam({ slug: "other-c", name: "O" });
    expect((await listSessions(f.pool, other.id)).sessions).toEqual([]);
    expect(await fleetStatus(f.pool, f.teamId)).toMatchObject({ queueDepth: expect.any(Number), activeRuns: expect.any(Number) });
  });
});
