// Trust boundaries of the web process (issue 13, items 7, 8, 9 and 12), over real HTTP against
// `keel web` (what the image runs): login limits keyed by the socket address (clients connect
// from different loopback addresses, 127.0.0.x, so each is a different peer), API keys that
// follow their creator's membership, SSE streams that end when their principal is revoked,
// security headers, malformed percent-encoding, /metrics behind a token, member adds that
// reveal nothing, and changing one's own password.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createPool, type Pool } from "@keel/core";
import { createTestDatabase } from "@keel/test/db";
import { ADMIN, ensureBuild, readSse, startServer, type RunningServer } from "./harness.js";

const PROXY = "127.0.0.9"; // the one trusted reverse proxy (KEEL_TRUSTED_PROXIES)
const METRICS_TOKEN = "metrics-token-for-tests-0123456789";
const MAX_AGE_MS = 6_000; // KEEL_SSE_MAX_AGE_MS: streams end with `event: reconnect` after this

let server: RunningServer;
let pool: Pool;
let drop: () => Promise<void>;
let port = 0;
const admin = { cookie: "", csrf: "", key: "" };

type Res = { status: number; body: any; text: string; headers: http.IncomingHttpHeaders };
type Opts = { method?: string; body?: unknown; headers?: Record<string, string>; from?: string; cookie?: { cookie: string; csrf: string }; key?: string };

/** One request from a chosen loopback source address (the socket's peer address on the server). */
function call(path: string, o: Opts = {}): Promise<Res> {
  const headers: Record<string, string> = { ...o.headers };
  const payload = o.body === undefined ? undefined : JSON.stringify(o.body);
  if (payload !== undefined) headers["content-type"] = "application/json";
  if (o.cookie) Object.assign(headers, { cookie: o.cookie.cookie, "x-csrf-token": o.cookie.csrf });
  if (o.key) headers.authorization = `Bearer ${o.key}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: o.method ?? (payload === undefined ? "GET" : "POST"), headers, localAddress: o.from ?? "127.0.0.1" },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text += d));
        res.on("end", () => {
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            /* not JSON; the test decides */
          }
          resolve({ status: res.statusCode!, body, text, headers: res.headers });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function login(
  email: string,
  password: string,
  from = "127.0.0.1",
  headers: Record<string, string> = {},
): Promise<Res & { session?: { cookie: string; csrf: string } }> {
  const r = await call("/api/v1/auth/login", { body: { email, password }, from, headers });
  if (r.status !== 200) return r;
  const setCookie = r.headers["set-cookie"];
  if (!setCookie) throw new Error(`login answered 200 without a cookie: ${JSON.stringify(r.headers)}`);
  return { ...r, session: { cookie: String(setCookie[0]).split(";")[0]!, csrf: r.body.csrfToken } };
}

beforeAll(async () => {
  const build = ensureBuild();
  if (build.rebuilt) console.log(`next build took ${build.ms} ms`);
  const db = await createTestDatabase();
  drop = db.drop;
  pool = createPool(db.url, { max: 4 });
  server = await startServer(
    db.url,
    { KEEL_TRUSTED_PROXIES: `${PROXY}/32`, KEEL_METRICS_TOKEN: METRICS_TOKEN, KEEL_SSE_MAX_AGE_MS: String(MAX_AGE_MS) },
    undefined,
    "keel",
  );
  port = Number(new URL(server.url).port);
  const s = await login(ADMIN.email, ADMIN.password);
  expect(s.status).toBe(200);
  Object.assign(admin, s.session);
  const key = await call("/api/v1/api-keys", { cookie: admin, body: { name: "tests", role: "admin" } });
  expect(key.status).toBe(201);
  admin.key = key.body.key;
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await pool?.end();
  await drop?.();
});

async function addMember(role: "admin" | "member" | "viewer"): Promise<{ email: string; password: string; userId: string }> {
  const email = `m-${randomUUID().slice(0, 8)}@example.com`;
  const password = `password of ${email}`;
  const r = await call("/api/v1/members", { key: admin.key, body: { email, password, role } });
  expect(r.status).toBe(201);
  return { email, password, userId: r.body.userId };
}

describe("login limits (item 7)", () => {
  test("failures from one address (any emails, forged X-Forwarded-For) never lock the right password out from another address", async () => {
    const attacker = "127.0.0.2";
    for (let i = 0; i < 12; i++) {
      const r = await login(`nobody-${i}@example.com`, "wrong password here", attacker, { "x-forwarded-for": `198.51.100.${i}` });
      expect(r.status).toBe(401);
    }
    const answers: number[] = [];
    // Forged X-Forwarded-For, and a forged copy of the header `keel web` passes the socket address in.
    for (let i = 0; i < 12; i++)
      answers.push(
        (await login(ADMIN.email, "wrong password here", attacker, { "x-forwarded-for": `203.0.113.${i}`, "x-keel-peer-address": `192.0.2.${i}` })).status,
      );
    // The forged headers change nothing: the 11th failure for this account from this socket is refused.
    expect(answers.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(answers.slice(10)).toEqual([429, 429]);
    // Even the right password is refused from the address that used up its attempts...
    expect((await login(ADMIN.email, ADMIN.password, attacker)).status).toBe(429);
    // ...but not from anywhere else, with or without X-Forwarded-For.
    expect((await login(ADMIN.email, ADMIN.password, "127.0.0.3")).status).toBe(200);
    expect((await login(ADMIN.email, ADMIN.password, "127.0.0.4", { "x-forwarded-for": attacker })).status).toBe(200);
  });

  test("behind a trusted proxy the forwarded client counts; hops a client prepends do not", async () => {
    const m = await addMember("viewer");
    const via = (client: string) => ({ "x-forwarded-for": client });
    for (let i = 0; i < 10; i++) expect((await login(m.email, "wrong password here", PROXY, via("203.0.113.50"))).status).toBe(401);
    expect((await login(m.email, m.password, PROXY, via("203.0.113.50"))).status).toBe(429);
    // A client that prepends an address of its choosing is still 203.0.113.50 (the proxy appended it).
    expect((await login(m.email, m.password, PROXY, via("192.0.2.1, 203.0.113.50"))).status).toBe(429);
    // Another client behind the same proxy logs in.
    expect((await login(m.email, m.password, PROXY, via("203.0.113.51"))).status).toBe(200);
    // An untrusted peer's X-Forwarded-For is ignored: its own socket address counts.
    expect((await login(m.email, m.password, "127.0.0.5", via("203.0.113.50"))).status).toBe(200);
  });
});

describe("API keys follow their creator's membership (item 8)", () => {
  test("keys record their creator; demotion revokes the keys above the new role, removal revokes all, in the same change", async () => {
    const ann = await addMember("admin");
    const s = (await login(ann.email, ann.password)).session!;
    const adminKey = await call("/api/v1/api-keys", { cookie: s, body: { name: "ann-admin", role: "admin" } });
    const memberKey = await call("/api/v1/api-keys", { cookie: s, body: { name: "ann-member", role: "member" } });
    // A key made with a key belongs to the person behind that key.
    const chained = await call("/api/v1/api-keys", { key: adminKey.body.key, body: { name: "ann-chained", role: "viewer" } });
    expect([adminKey.status, memberKey.status, chained.status]).toEqual([201, 201, 201]);
    const listed = async () => (await call("/api/v1/api-keys", { key: admin.key })).body.apiKeys as any[];
    const mine = (await listed()).filter((k) => k.name.startsWith("ann-"));
    expect(mine).toHaveLength(3);
    for (const k of mine) expect(k.createdBy).toEqual({ userId: ann.userId, email: ann.email });

    expect((await call(`/api/v1/members/${ann.userId}`, { method: "PATCH", key: admin.key, body: { role: "member" } })).status).toBe(200);
    expect((await call("/api/v1/agents", { key: adminKey.body.key })).status).toBe(401);
    expect((await call("/api/v1/agents", { key: memberKey.body.key })).status).toBe(200);
    expect((await call("/api/v1/agents", { key: chained.body.key })).status).toBe(200);
    expect((await listed()).find((k) => k.name === "ann-admin")).toMatchObject({ revokedAt: expect.any(String), revokedReason: "creator_demoted" });

    expect((await call(`/api/v1/members/${ann.userId}`, { method: "DELETE", key: admin.key })).status).toBe(204);
    for (const k of [memberKey, chained]) expect((await call("/api/v1/agents", { key: k.body.key })).status).toBe(401);
    const after = (await listed()).filter((k) => k.name.startsWith("ann-"));
    expect(after.map((k) => [k.name, k.revokedReason]).sort()).toEqual([
      ["ann-admin", "creator_demoted"],
      ["ann-chained", "creator_removed"],
      ["ann-member", "creator_removed"],
    ]);
  });
});

describe("SSE streams end when their principal is revoked (item 9)", () => {
  async function openStream(auth: Pick<Opts, "key" | "cookie">): Promise<{ events: Promise<{ event: string }[]> }> {
    const session = await call("/api/v1/sessions", { key: admin.key, body: { agentId: await agentId() } });
    expect(session.status).toBe(201);
    const headers: Record<string, string> = auth.key ? { authorization: `Bearer ${auth.key}` } : { cookie: auth.cookie!.cookie };
    const res = await fetch(`${server.url}/api/v1/sessions/${session.body.id}/stream`, { headers });
    expect(res.status).toBe(200);
    // Read until the server ends the stream (the test times out if it never does).
    return { events: readSse(res, () => false) };
  }
  let agent = "";
  async function agentId(): Promise<string> {
    if (agent) return agent;
    const r = await call("/api/v1/agents", { key: admin.key, body: { name: "streamer", model: "demo" } });
    return (agent = r.body.id);
  }

  test("a revoked key's stream ends with event: unauthorized", async () => {
    const k = await call("/api/v1/api-keys", { key: admin.key, body: { name: "stream-key", role: "viewer" } });
    const { events } = await openStream({ key: k.body.key });
    expect((await call(`/api/v1/api-keys/${k.body.id}`, { method: "DELETE", key: admin.key })).status).toBe(204);
    expect((await events).map((e) => e.event)).toContain("unauthorized");
  }, 20_000);

  test("a logged-out session's stream and a removed member's stream end", async () => {
    const s = (await login(ADMIN.email, ADMIN.password)).session!;
    const own = await openStream({ cookie: s });
    expect((await call("/api/v1/auth/logout", { cookie: s, method: "POST" })).status).toBe(204);
    expect((await own.events).map((e) => e.event)).toContain("unauthorized");

    const m = await addMember("viewer");
    const ms = (await login(m.email, m.password)).session!;
    const theirs = await openStream({ cookie: ms });
    expect((await call(`/api/v1/members/${m.userId}`, { method: "DELETE", key: admin.key })).status).toBe(204);
    expect((await theirs.events).map((e) => e.event)).toContain("unauthorized");
  }, 20_000);

  test(
    "a stream's lifetime is capped: it ends with event: reconnect and a retry hint",
    async () => {
      const { events } = await openStream({ key: admin.key });
      expect((await events).map((e) => e.event)).toEqual(["reconnect"]);
    },
    MAX_AGE_MS + 15_000,
  );
});

describe("headers, encodings, metrics, members, passwords (item 12)", () => {
  test("every page and API answer carries the security headers", async () => {
    const paths: [string, string?][] = [
      ["/"],
      ["/login"],
      ["/settings"],
      ["/no-such-page"],
      ["/api/v1/me"],
      ["/api/v1/no/such"],
      ["/api/v1/openapi.json"],
      ["/healthz"],
      ["/readyz"],
      ["/metrics"],
      ["/v1/models"],
      ["/api/v1/agents", "PATCH"],
      ["/api/v1/sessions/%E0%A4%A"],
    ];
    for (const [path, method] of paths) {
      const r = await call(path, { method });
      const h = r.headers;
      expect.soft(h["content-security-policy"], path).toMatch(/frame-ancestors 'none'/);
      expect.soft(h["content-security-policy"], path).toMatch(/default-src 'self'/);
      expect.soft(h["x-content-type-options"], path).toBe("nosniff");
      expect.soft(h["referrer-policy"], path).toBe("no-referrer");
      expect.soft(h["x-frame-options"], path).toBe("DENY");
    }
  });

  test("malformed percent-encoding answers 400 JSON", async () => {
    for (const path of ["/api/v1/sessions/%E0%A4%A", "/api/v1/agents/%ZZ", "/api/v1/sessions/%C0%AF/events", "/v1/models/%E0"]) {
      const r = await call(path, { key: admin.key });
      expect.soft(r.status, path).toBe(400);
      expect.soft(r.body?.error?.code, path).toBe("bad_encoding");
    }
    // Pages too (they were a bare 500 as well).
    for (const path of ["/sessions/%E0%A4%A", "/agents/%ZZ"]) {
      const r = await call(path);
      expect.soft(r.status, path).toBe(400);
      expect.soft(r.body?.error?.code, path).toBe("bad_encoding");
    }
    // A cookie that is not valid percent-encoding is no session, not a 500.
    const r = await call("/api/v1/me", { headers: { cookie: "keel_session=%E0%A4%A" } });
    expect(r.status).toBe(401);
  });

  test("/metrics needs KEEL_METRICS_TOKEN when it is set", async () => {
    const none = await call("/metrics");
    expect(none.status).toBe(401);
    expect(none.body.error.code).toBe("unauthorized");
    expect((await call("/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    const ok = await call("/metrics", { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("keel_web_http_requests_total");
  });

  test("adding a member whose email has an account in another team answers like a new email", async () => {
    const { rows: team } = await pool.query("INSERT INTO teams (slug, name) VALUES ($1, 'Other') RETURNING id", [`other-${randomUUID().slice(0, 8)}`]);
    const { rows: user } = await pool.query("INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id", [
      `taken-${randomUUID().slice(0, 8)}@example.com`,
    ]);
    await pool.query("INSERT INTO memberships (team_id, user_id, role) VALUES ($1, $2, 'admin')", [team[0].id, user[0].id]);
    const { rows: u } = await pool.query("SELECT email FROM users WHERE id = $1", [user[0].id]);
    const taken = await call("/api/v1/members", { key: admin.key, body: { email: u[0].email, password: "a first password", role: "viewer" } });
    const fresh = await call("/api/v1/members", {
      key: admin.key,
      body: { email: `fresh-${randomUUID().slice(0, 8)}@example.com`, password: "a first password", role: "viewer" },
    });
    expect(taken.status).toBe(fresh.status);
    expect(Object.keys(taken.body).sort()).toEqual(Object.keys(fresh.body).sort());
    // The other team's account is untouched: its password was not replaced by the one sent.
    const { rows: after } = await pool.query("SELECT password_hash FROM users WHERE id = $1", [user[0].id]);
    expect(after[0].password_hash).toBe("x");
    // A member of this team already: 409, which reveals nothing the member list does not show.
    expect((await call("/api/v1/members", { key: admin.key, body: { email: ADMIN.email, password: "a first password", role: "viewer" } })).status).toBe(409);
  });

  test("a user changes their own password; their other logins end; a key cannot", async () => {
    const m = await addMember("viewer");
    const s1 = (await login(m.email, m.password)).session!;
    const s2 = (await login(m.email, m.password)).session!;
    const wrong = await call("/api/v1/me/password", { cookie: s1, body: { currentPassword: "not my password", newPassword: "a brand new password" } });
    expect(wrong.status).toBe(403);
    expect(wrong.body.error.code).toBe("wrong_password");
    expect((await call("/api/v1/me/password", { cookie: s1, body: { currentPassword: m.password, newPassword: "short" } })).status).toBe(422);
    expect((await call("/api/v1/me/password", { cookie: s1, body: { currentPassword: m.password, newPassword: "a brand new password" } })).status).toBe(204);
    expect((await login(m.email, m.password, "127.0.0.6")).status).toBe(401);
    expect((await login(m.email, "a brand new password", "127.0.0.6")).status).toBe(200);
    expect((await call("/api/v1/me", { cookie: s1 })).status).toBe(200);
    expect((await call("/api/v1/me", { cookie: s2 })).status).toBe(401);
    const byKey = await call("/api/v1/me/password", { key: admin.key, body: { currentPassword: ADMIN.password, newPassword: "a brand new password" } });
    expect(byKey.status).toBe(403);
  });

  test("the OpenAPI document lists GET /api/v1/sandboxes and POST /api/v1/me/password", async () => {
    const doc = (await call("/api/v1/openapi.json")).body;
    expect(doc.paths["/api/v1/sandboxes"]?.get).toBeDefined();
    expect(doc.paths["/api/v1/me/password"]?.post).toBeDefined();
  });
});
