// Bad input over every API route and method (the list comes from the filesystem, routes.ts):
// malformed JSON, wrong content types, wrong types, unknown fields, oversized bodies, bad cursors
// and seqs, control characters in bodies, queries and paths, huge messages. Each answer must be
// the expected 4xx with a JSON {error:{code,message,details}}, never a 5xx, and nothing may be
// written: every table's content is fingerprinted before and after (real built server, real
// Postgres; no worker, so nothing else writes meanwhile).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createPool, type Pool } from "@keel/core";
import { createTestDatabase } from "@keel/test/db";
import { ADMIN, startServer, type RunningServer } from "./harness.js";
import { apiRoutes, type Method, type RouteKey } from "./routes.js";

let server: RunningServer;
let pool: Pool;
let drop: () => Promise<void>;
const f = { cookie: "", csrf: "", key: "", platformKey: "", agentId: "", agentName: "bad-input-agent", sessionId: "" };

type Case = {
  name: string;
  method: Method;
  path: string;
  raw?: string;
  body?: unknown;
  type?: string;
  headers?: Record<string, string>;
  status: number;
  code: string;
};

async function send(c: Case): Promise<{ status: number; text: string; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${f.key}`, ...c.headers };
  const payload = c.raw ?? (c.body === undefined ? undefined : JSON.stringify(c.body));
  if (payload !== undefined) headers["content-type"] = c.type ?? "application/json";
  const res = await fetch(server.url + c.path, { method: c.method, headers, body: payload });
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* checked below */
  }
  return { status: res.status, text, body };
}

/** Every table's rows, hashed (worker heartbeats and key usage times excluded). */
async function fingerprint(): Promise<Record<string, string>> {
  const { rows: tables } = await pool.query<{ t: string }>(
    `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'workers' ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const { rows } = await pool.query<{ n: number; h: string }>(
      `SELECT count(*)::int AS n, md5(coalesce(string_agg(j, ',' ORDER BY j), '')) AS h FROM (SELECT (to_jsonb(x) - 'last_used_at')::text AS j FROM "${t}" x) s`,
    );
    out[t] = `${rows[0]!.n}:${rows[0]!.h}`;
  }
  return out;
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  pool = createPool(db.url, { max: 4 });
  server = await startServer(db.url);
  const login = await fetch(`${server.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  f.cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  f.csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
  const h = { "content-type": "application/json", cookie: f.cookie, "x-csrf-token": f.csrf };
  f.key = (
    (await (
      await fetch(`${server.url}/api/v1/api-keys`, { method: "POST", headers: h, body: JSON.stringify({ name: "bad-input", role: "admin" }) })
    ).json()) as { key: string }
  ).key;
  f.platformKey = (
    (await (
      await fetch(`${server.url}/api/v1/api-keys`, {
        method: "POST",
        headers: h,
        body: JSON.stringify({ name: "bad-input-platform", role: "admin", platform: true }),
      })
    ).json()) as { key: string }
  ).key;
  const ah = { "content-type": "application/json", authorization: `Bearer ${f.key}` };
  f.agentId = (
    (await (
      await fetch(`${server.url}/api/v1/agents`, { method: "POST", headers: ah, body: JSON.stringify({ name: f.agentName, model: "demo" }) })
    ).json()) as { id: string }
  ).id;
  f.sessionId = (
    (await (await fetch(`${server.url}/api/v1/sessions`, { method: "POST", headers: ah, body: JSON.stringify({ agentId: f.agentId }) })).json()) as {
      id: string;
    }
  ).id;
}, 240_000);

afterAll(async () => {
  await server?.stop();
  await pool?.end();
  await drop?.();
});

const BIG = 1024 * 1024 + 100;
const INT64_OVER = "9999999999999999999"; // 19 digits, past bigint's range
const V = "validation_failed";

type BodySpec = {
  path: () => string;
  valid: () => Record<string, unknown>;
  /** fields where any control character is refused (one-line values) */ lines?: string[];
  strict?: boolean;
};

/** The cases every JSON-body route gets, from one valid body. */
function bodyCases(method: Method, s: BodySpec): Case[] {
  const path = s.path();
  const valid = s.valid();
  const c = (name: string, x: Partial<Case>, status: number, code: string): Case => ({ name, method, path, status, code, ...x });
  const out: Case[] = [
    c("malformed JSON", { raw: "{not json" }, 400, "invalid_json"),
    c("truncated JSON", { raw: JSON.stringify(valid).slice(0, -1) }, 400, "invalid_json"),
    c("no body", { raw: "" }, 400, "invalid_json"),
    c("text/plain", { raw: JSON.stringify(valid), type: "text/plain" }, 415, "unsupported_media_type"),
    c("form encoded", { raw: "a=1", type: "application/x-www-form-urlencoded" }, 415, "unsupported_media_type"),
    c("array body", { body: [valid] }, 422, V),
    c("null body", { raw: "null" }, 422, V),
    c("string body", { raw: '"hello"' }, 422, V),
    c("oversized body (declared)", { raw: JSON.stringify({ ...valid, pad: "x".repeat(BIG) }) }, 413, "payload_too_large"),
    c("deeply nested JSON", { raw: `{"zz":${"[".repeat(100_000)}${"]".repeat(100_000)}}` }, s.strict === false ? 200 : 422, V),
  ];
  if (s.strict !== false) out.push(c("unknown field", { body: { ...valid, zzUnknown: 1 } }, 422, V));
  for (const [k, v] of Object.entries(valid)) {
    const wrong = typeof v === "string" ? 42 : typeof v === "boolean" ? "yes" : typeof v === "number" ? "1" : Array.isArray(v) ? { a: 1 } : "not an object";
    out.push(c(`wrong type: ${k}`, { body: { ...valid, [k]: wrong } }, 422, V));
    out.push(c(`null: ${k}`, { body: { ...valid, [k]: null } }, 422, V));
    if (typeof v === "string") {
      out.push(c(`NUL in ${k}`, { body: { ...valid, [k]: `a\u0000b${v}` } }, 422, V));
      if (s.lines?.includes(k)) out.push(c(`control character in ${k}`, { body: { ...valid, [k]: `${v}\u0007\u001b[31m` } }, 422, V));
    }
  }
  return out;
}

/** Routes that take no body: an absent or empty-object body is fine; anything else is refused. */
function noBodyCases(method: Method, path: string): Case[] {
  return [
    { name: "malformed JSON", method, path, raw: "{not json", status: 400, code: "invalid_json" },
    { name: "unknown field", method, path, body: { zzUnknown: 1 }, status: 422, code: V },
    { name: "text/plain", method, path, raw: "hello", type: "text/plain", status: 415, code: "unsupported_media_type" },
    { name: "oversized body", method, path, raw: JSON.stringify({ pad: "x".repeat(BIG) }), status: 413, code: "payload_too_large" },
    { name: "unknown query parameter", method, path: `${path}${path.includes("?") ? "&" : "?"}zzUnknown=1`, status: 422, code: V },
  ];
}

function getCases(path: string, extra: [string, string, number?, string?][] = []): Case[] {
  const sep = path.includes("?") ? "&" : "?";
  return [
    { name: "unknown query parameter", method: "GET", path: `${path}${sep}zzUnknown=1`, status: 422, code: V },
    { name: "NUL in a query parameter name", method: "GET", path: `${path}${sep}%00=1`, status: 422, code: V },
    ...extra.map(([name, q, status, code]): Case => ({ name, method: "GET", path: `${path}${sep}${q}`, status: status ?? 422, code: code ?? V })),
  ];
}

/** Path parameters that name nothing: answered like any missing resource. */
function idCases(method: Method, template: (id: string) => string, body?: unknown, missing: [number, string] = [404, "not_found"]): Case[] {
  return [
    { name: "garbage id", method, path: template("not-an-id"), body, status: missing[0], code: missing[1] },
    { name: "very long id", method, path: template("x".repeat(4000)), body, status: missing[0], code: missing[1] },
    { name: "NUL in id", method, path: template("ab%00cd"), body, status: 422, code: V },
    { name: "control character in id", method, path: template("ab%07cd"), body, status: 422, code: V },
    { name: "encoded slash in id", method, path: template("..%2F..%2Fapi-keys"), body, status: missing[0], code: missing[1] },
  ];
}

const s = () => `/api/v1/sessions/${f.sessionId}`;
const NOT_FOUND: [number, string] = [404, "not_found"];
/** A well-formed id nobody has. */
const NO_ONE = "00000000-0000-4000-8000-000000000000";

/** Platform routes are called with a platform key (a team admin's key gets 403 before any validation). */
const asPlatform = (cases: Case[]): Case[] => cases.map((c) => ({ ...c, headers: { authorization: `Bearer ${f.platformKey}`, ...c.headers } }));
/** Routes without credentials (invitation links). */
const anonymous = (cases: Case[]): Case[] => cases.map((c) => ({ ...c, headers: { authorization: "", ...c.headers } }));
const team = (id = NO_ONE) => `/api/v1/platform/teams/${id}`;

const matrix: Record<RouteKey, () => Case[]> = {
  "GET /api/v1/invitations": () => getCases("/api/v1/invitations"),
  "POST /api/v1/invitations": () => [
    ...bodyCases("POST", { path: () => "/api/v1/invitations", valid: () => ({ email: "new@example.com", role: "member" }), lines: ["email"] }),
    { name: "unknown role", method: "POST", path: "/api/v1/invitations", body: { email: "n@example.com", role: "owner" }, status: 422, code: V },
    { name: "not an email", method: "POST", path: "/api/v1/invitations", body: { email: "nope", role: "member" }, status: 422, code: V },
  ],
  "DELETE /api/v1/invitations/[id]": () => [
    ...idCases("DELETE", (id) => `/api/v1/invitations/${id}`),
    ...noBodyCases("DELETE", `/api/v1/invitations/${NO_ONE}`),
  ],
  "POST /api/v1/invitations/lookup": () =>
    anonymous([
      ...bodyCases("POST", { path: () => "/api/v1/invitations/lookup", valid: () => ({ token: "ki_nothing" }) }),
      { name: "unknown token", method: "POST", path: "/api/v1/invitations/lookup", body: { token: "ki_nothing" }, status: 404, code: "invitation_not_found" },
      { name: "token of 201 characters", method: "POST", path: "/api/v1/invitations/lookup", body: { token: "k".repeat(201) }, status: 422, code: V },
      { name: "empty token", method: "POST", path: "/api/v1/invitations/lookup", body: { token: "" }, status: 422, code: V },
    ]),
  "POST /api/v1/invitations/accept": () =>
    anonymous([
      ...bodyCases("POST", { path: () => "/api/v1/invitations/accept", valid: () => ({ token: "ki_nothing", password: "a long enough password" }) }),
      {
        name: "unknown token",
        method: "POST",
        path: "/api/v1/invitations/accept",
        body: { token: "ki_nothing", password: "a long enough password" },
        status: 404,
        code: "invitation_not_found",
      },
    ]),
  "GET /api/v1/me/teams": () => getCases("/api/v1/me/teams"),
  "POST /api/v1/me/team": () => [
    ...bodyCases("POST", { path: () => "/api/v1/me/team", valid: () => ({ teamId: NO_ONE }) }),
    { name: "team id not an id", method: "POST", path: "/api/v1/me/team", body: { teamId: "acme" }, status: 422, code: V },
  ],
  "GET /api/v1/platform/teams": () => asPlatform(getCases("/api/v1/platform/teams")),
  "POST /api/v1/platform/teams": () =>
    asPlatform([
      ...bodyCases("POST", { path: () => "/api/v1/platform/teams", valid: () => ({ slug: "fine-slug", name: "Fine" }), lines: ["name"] }),
      { name: "slug with capitals", method: "POST", path: "/api/v1/platform/teams", body: { slug: "Acme2" }, status: 422, code: V },
      { name: "slug starting with -", method: "POST", path: "/api/v1/platform/teams", body: { slug: "-x" }, status: 422, code: V },
      { name: "slug of 65 characters", method: "POST", path: "/api/v1/platform/teams", body: { slug: "x".repeat(65) }, status: 422, code: V },
      { name: "duplicate slug", method: "POST", path: "/api/v1/platform/teams", body: { slug: "acme" }, status: 409, code: "team_exists" },
      { name: "empty name", method: "POST", path: "/api/v1/platform/teams", body: { slug: "fine-slug", name: "" }, status: 422, code: V },
    ]),
  "PATCH /api/v1/platform/teams/[id]": () =>
    asPlatform([
      ...bodyCases("PATCH", { path: () => team(), valid: () => ({ slug: "fine-slug", name: "Fine" }), lines: ["name"] }),
      ...idCases("PATCH", (id) => team(id), { name: "x" }),
      { name: "invalid slug", method: "PATCH", path: team(), body: { slug: "not a slug" }, status: 422, code: V },
      { name: "nothing to change", method: "PATCH", path: team(), body: {}, status: 422, code: V },
    ]),
  "DELETE /api/v1/platform/teams/[id]": () =>
    asPlatform([
      ...bodyCases("DELETE", { path: () => team(), valid: () => ({ confirm: "acme" }) }),
      ...idCases("DELETE", (id) => team(id), { confirm: "acme" }),
    ]),
  "POST /api/v1/platform/teams/[id]/suspend": () =>
    asPlatform([
      ...bodyCases("POST", { path: () => `${team()}/suspend`, valid: () => ({ reason: "unpaid" }), lines: ["reason"] }),
      ...idCases("POST", (id) => `${team(id)}/suspend`, { reason: "unpaid" }),
      { name: "empty reason", method: "POST", path: `${team()}/suspend`, body: { reason: "" }, status: 422, code: V },
      { name: "reason of 501 characters", method: "POST", path: `${team()}/suspend`, body: { reason: "x".repeat(501) }, status: 422, code: V },
    ]),
  "POST /api/v1/platform/teams/[id]/resume": () => asPlatform([...noBodyCases("POST", `${team()}/resume`), ...idCases("POST", (id) => `${team(id)}/resume`)]),
  "POST /api/v1/platform/teams/[id]/invitations": () =>
    asPlatform([
      ...bodyCases("POST", { path: () => `${team()}/invitations`, valid: () => ({ email: "new@example.com", role: "admin" }), lines: ["email"] }),
      ...idCases("POST", (id) => `${team(id)}/invitations`, { email: "new@example.com", role: "admin" }),
      { name: "unknown role", method: "POST", path: `${team()}/invitations`, body: { email: "n@example.com", role: "root" }, status: 422, code: V },
    ]),
  "GET /api/v1/platform/admins": () => asPlatform(getCases("/api/v1/platform/admins")),
  "POST /api/v1/platform/admins": () =>
    asPlatform([
      ...bodyCases("POST", { path: () => "/api/v1/platform/admins", valid: () => ({ email: "nobody@example.com" }), lines: ["email"] }),
      { name: "unknown email", method: "POST", path: "/api/v1/platform/admins", body: { email: "nobody@example.com" }, status: 404, code: "not_found" },
    ]),
  "DELETE /api/v1/platform/admins/[userId]": () =>
    asPlatform([...idCases("DELETE", (id) => `/api/v1/platform/admins/${id}`), ...noBodyCases("DELETE", `/api/v1/platform/admins/${NO_ONE}`)]),
  "GET /api/v1/[...rest]": () => [{ name: "unknown route", method: "GET", path: "/api/v1/nope%00", status: 404, code: "not_found" }],
  "POST /api/v1/[...rest]": () => [{ name: "unknown route, malformed JSON", method: "POST", path: "/api/v1/nope", raw: "{x", status: 404, code: "not_found" }],
  "PUT /api/v1/[...rest]": () => [
    { name: "unknown route", method: "PUT", path: "/api/v1/sessions/x/y/z", body: {}, status: 404, code: "not_found" },
    // A method a route does not export: server/proxy.ts answers before Next's bare 405.
    { name: "known route, method it does not have", method: "PUT", path: "/api/v1/sessions", body: {}, status: 405, code: "method_not_allowed" },
    {
      name: "known dynamic route, method it does not have",
      method: "PUT",
      path: "/api/v1/runs/00000000-0000-4000-8000-000000000000",
      body: {},
      status: 405,
      code: "method_not_allowed",
    },
  ],
  "PATCH /api/v1/[...rest]": () => [
    { name: "unknown route", method: "PATCH", path: "/api/v1/nope", body: {}, status: 404, code: "not_found" },
    { name: "known route, method it does not have", method: "PATCH", path: "/api/v1/agents", body: {}, status: 405, code: "method_not_allowed" },
    { name: "OpenAI-compatible route, method it does not have", method: "PATCH", path: "/v1/models", body: {}, status: 405, code: "method_not_allowed" },
  ],
  "DELETE /api/v1/[...rest]": () => [
    { name: "unknown route", method: "DELETE", path: "/api/v1/nope/deeper", status: 404, code: "not_found" },
    { name: "known route, method it does not have", method: "DELETE", path: "/api/v1/agents", status: 405, code: "method_not_allowed" },
    {
      name: "nested known route, method it does not have",
      method: "DELETE",
      path: "/api/v1/sessions/00000000-0000-4000-8000-000000000000/events",
      status: 405,
      code: "method_not_allowed",
    },
  ],
  "GET /api/v1/agents": () => getCases("/api/v1/agents"),
  "POST /api/v1/agents": () => [
    ...bodyCases("POST", {
      path: () => "/api/v1/agents",
      valid: () => ({ name: "fine-name", model: "demo", instructions: "be brief" }),
      lines: ["name", "model"],
    }),
    {
      name: "bad provider field",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "demo", provider: { kind: "demo", nope: true } },
      status: 422,
      code: V,
    },
    {
      name: "provider key secret not a secret name",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "m", provider: { baseUrl: "http://127.0.0.1:9/v1", apiKeySecret: "sk-live-abc" } },
      status: 422,
      code: V,
    },
    {
      name: "200,001 character instructions",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "demo", instructions: "x".repeat(200_001) },
      status: 422,
      code: V,
    },
    { name: "tools not strings", method: "POST", path: "/api/v1/agents", body: { name: "x", model: "demo", tools: [1, 2] }, status: 422, code: V },
    {
      name: "sandbox policy: a URL as an egress entry",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "demo", sandboxPolicy: { egress: { allow: ["https://example.com/x"] } } },
      status: 422,
      code: V,
    },
    {
      name: "sandbox policy: unknown key (typo)",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "demo", sandboxPolicy: { egres: "none" } },
      status: 422,
      code: V,
    },
    {
      name: "sandbox policy: memory out of range",
      method: "POST",
      path: "/api/v1/agents",
      body: { name: "x", model: "demo", sandboxPolicy: { resources: { memoryMb: 1 } } },
      status: 422,
      code: V,
    },
  ],
  "GET /api/v1/agents/[id]": () => [...idCases("GET", (id) => `/api/v1/agents/${id}`), ...getCases(`/api/v1/agents/${f.agentId}`)],
  "PUT /api/v1/agents/[id]": () => [
    ...bodyCases("PUT", { path: () => `/api/v1/agents/${f.agentId}`, valid: () => ({ model: "demo", instructions: "x" }), lines: ["model"] }),
    ...idCases("PUT", (id) => `/api/v1/agents/${id}`, { model: "demo" }),
  ],
  "DELETE /api/v1/agents/[id]": () => [...idCases("DELETE", (id) => `/api/v1/agents/${id}`), ...noBodyCases("DELETE", `/api/v1/agents/${f.agentId}`)],
  "GET /api/v1/api-keys": () => getCases("/api/v1/api-keys"),
  "POST /api/v1/api-keys": () => [
    ...bodyCases("POST", { path: () => "/api/v1/api-keys", valid: () => ({ name: "k", role: "viewer" }), lines: ["name"] }),
    { name: "unknown role", method: "POST", path: "/api/v1/api-keys", body: { name: "k", role: "root" }, status: 422, code: V },
  ],
  "DELETE /api/v1/api-keys/[id]": () => [
    ...idCases("DELETE", (id) => `/api/v1/api-keys/${id}`),
    ...noBodyCases("DELETE", "/api/v1/api-keys/00000000-0000-4000-8000-000000000000"),
  ],
  "GET /api/v1/approvals": () =>
    getCases("/api/v1/approvals", [
      ["limit 0", "limit=0"],
      ["limit 501", "limit=501"],
      ["limit not a number", "limit=ten"],
      ["limit a fraction", "limit=1.5"],
    ]),
  "GET /api/v1/audit": () =>
    getCases("/api/v1/audit", [
      ["bad cursor", "before=1;drop"],
      ["cursor past bigint", `before=${INT64_OVER}`],
      ["negative cursor", "before=-5"],
      ["limit 0", "limit=0"],
      ["limit 501", "limit=501"],
      ["limit not a number", "limit=ten"],
      ["NUL cursor", "before=%00"],
    ]),
  "POST /api/v1/auth/login": () =>
    bodyCases("POST", { path: () => "/api/v1/auth/login", valid: () => ({ email: ADMIN.email, password: "some wrong password" }), lines: ["email"] }).map(
      (c) => ({ ...c, headers: { authorization: "" } }),
    ),
  "POST /api/v1/auth/logout": () => noBodyCases("POST", "/api/v1/auth/logout"),
  "GET /api/v1/me": () => getCases("/api/v1/me"),
  "POST /api/v1/me/password": () =>
    bodyCases("POST", {
      path: () => "/api/v1/me/password",
      valid: () => ({ currentPassword: "not the current password", newPassword: "a new long password" }),
    }),
  "GET /api/v1/members": () => getCases("/api/v1/members"),
  "PATCH /api/v1/members/[userId]": () => [
    ...bodyCases("PATCH", { path: () => `/api/v1/members/${NO_ONE}`, valid: () => ({ role: "viewer" }) }),
    ...idCases("PATCH", (id) => `/api/v1/members/${id}`, { role: "viewer" }),
    { name: "unknown role", method: "PATCH", path: `/api/v1/members/${NO_ONE}`, body: { role: "owner" }, status: 422, code: V },
  ],
  "DELETE /api/v1/members/[userId]": () => [...idCases("DELETE", (id) => `/api/v1/members/${id}`), ...noBodyCases("DELETE", `/api/v1/members/${NO_ONE}`)],
  "POST /api/v1/members": () => [
    ...bodyCases("POST", {
      path: () => "/api/v1/members",
      valid: () => ({ email: "new@example.com", password: "long enough password", role: "member" }),
      lines: ["email"],
    }),
    {
      name: "short password",
      method: "POST",
      path: "/api/v1/members",
      body: { email: "n@example.com", password: "short", role: "member" },
      status: 422,
      code: V,
    },
    {
      name: "not an email",
      method: "POST",
      path: "/api/v1/members",
      body: { email: "nope", password: "long enough password", role: "member" },
      status: 422,
      code: V,
    },
  ],
  "GET /api/v1/openapi.json": () => [{ name: "query ignored on a static document", method: "GET", path: "/api/v1/openapi.json?zz=1", status: 200, code: "" }],
  "GET /api/v1/runs/[id]": () => [...idCases("GET", (id) => `/api/v1/runs/${id}`), ...getCases("/api/v1/runs/00000000-0000-4000-8000-000000000000")],
  "GET /api/v1/sandboxes": () => getCases("/api/v1/sandboxes"),
  "GET /api/v1/secrets": () => getCases("/api/v1/secrets"),
  "PUT /api/v1/secrets/[name]": () => [
    ...bodyCases("PUT", { path: () => "/api/v1/secrets/GOOD_NAME", valid: () => ({ value: "v" }) }),
    ...idCases("PUT", (id) => `/api/v1/secrets/${id}`, { value: "v" }, [422, V]),
    { name: "empty value", method: "PUT", path: "/api/v1/secrets/GOOD_NAME", body: { value: "" }, status: 422, code: V },
    { name: "value over 64 KiB", method: "PUT", path: "/api/v1/secrets/GOOD_NAME", body: { value: "x".repeat(64 * 1024 + 1) }, status: 422, code: V },
  ],
  "DELETE /api/v1/secrets/[name]": () => [...idCases("DELETE", (id) => `/api/v1/secrets/${id}`), ...noBodyCases("DELETE", "/api/v1/secrets/NO_SUCH")],
  "GET /api/v1/sessions": () =>
    getCases("/api/v1/sessions", [
      ["garbage cursor", "cursor=garbage"],
      ["cursor of a bad date", `cursor=${Buffer.from(JSON.stringify(["not a date", "00000000-0000-4000-8000-000000000000"])).toString("base64url")}`],
      ["cursor of a bad id", `cursor=${Buffer.from(JSON.stringify(["2026-01-01T00:00:00Z", "x"])).toString("base64url")}`],
      ["cursor of an object", `cursor=${Buffer.from("{}").toString("base64url")}`],
      [
        "cursor of year 300000",
        `cursor=${Buffer.from(JSON.stringify(["300000-01-01T00:00:00Z", "00000000-0000-4000-8000-000000000000"])).toString("base64url")}`,
      ],
      ["huge cursor", `cursor=${"A".repeat(600)}`],
      ["limit 0", "limit=0"],
      ["limit 201", "limit=201"],
      ["limit 1.5", "limit=1.5"],
      ["limit empty", "limit="],
      ["bad status", "status=running"],
      ["NUL in q", "q=a%00b"],
      ["control character in q", "q=a%07b"],
      ["q too long", `q=${"x".repeat(201)}`],
      ["NUL in agentId", "agentId=%00"],
    ]),
  "POST /api/v1/sessions": () => [
    ...bodyCases("POST", { path: () => "/api/v1/sessions", valid: () => ({ agentId: f.agentId, title: "a title" }), lines: ["agentId", "title"] }),
    {
      name: "agent that does not exist",
      method: "POST",
      path: "/api/v1/sessions",
      body: { agentId: "00000000-0000-4000-8000-000000000000" },
      status: 404,
      code: "not_found",
    },
    { name: "title too long", method: "POST", path: "/api/v1/sessions", body: { agentId: f.agentId, title: "x".repeat(501) }, status: 422, code: V },
  ],
  "GET /api/v1/sessions/[id]": () => [...idCases("GET", (id) => `/api/v1/sessions/${id}`), ...getCases(s())],
  "DELETE /api/v1/sessions/[id]": () => [...idCases("DELETE", (id) => `/api/v1/sessions/${id}`), ...noBodyCases("DELETE", s())],
  "POST /api/v1/sessions/[id]/approvals/[callId]": () => [
    ...bodyCases("POST", { path: () => `${s()}/approvals/call_1`, valid: () => ({ approve: true, reason: "ok" }) }),
    ...idCases("POST", (id) => `/api/v1/sessions/${id}/approvals/call_1`, { approve: true }),
    ...idCases("POST", (id) => `${s()}/approvals/${id}`, { approve: true }),
    { name: "reason too long", method: "POST", path: `${s()}/approvals/call_1`, body: { approve: true, reason: "x".repeat(2001) }, status: 422, code: V },
  ],
  "POST /api/v1/sessions/[id]/archive": () => [
    ...bodyCases("POST", { path: () => `${s()}/archive`, valid: () => ({ archived: true }) }),
    ...idCases("POST", (id) => `/api/v1/sessions/${id}/archive`, { archived: true }),
  ],
  "POST /api/v1/sessions/[id]/cancel": () => [...noBodyCases("POST", `${s()}/cancel`), ...idCases("POST", (id) => `/api/v1/sessions/${id}/cancel`)],
  "GET /api/v1/sessions/[id]/events": () => [
    ...idCases("GET", (id) => `/api/v1/sessions/${id}/events`),
    ...getCases(`${s()}/events`, [
      ["negative after", "after=-1"],
      ["after not a number", "after=abc"],
      ["after past bigint", `after=${INT64_OVER}`],
      ["after 20 digits", "after=99999999999999999999"],
      ["limit 0", "limit=0"],
      ["limit 5001", "limit=5001"],
      ["NUL after", "after=%00"],
    ]),
  ],
  "POST /api/v1/sessions/[id]/messages": () => [
    ...bodyCases("POST", { path: () => `${s()}/messages`, valid: () => ({ content: "hello", onBusy: "enqueue" }) }),
    ...idCases("POST", (id) => `/api/v1/sessions/${id}/messages`, { content: "hi" }),
    { name: "empty content", method: "POST", path: `${s()}/messages`, body: { content: "" }, status: 422, code: V },
    { name: "huge message (300 KiB)", method: "POST", path: `${s()}/messages`, body: { content: "x".repeat(300 * 1024) }, status: 422, code: V },
    {
      name: "huge message (2 MiB)",
      method: "POST",
      path: `${s()}/messages`,
      raw: JSON.stringify({ content: "x".repeat(2 * 1024 * 1024) }),
      status: 413,
      code: "payload_too_large",
    },
    {
      name: "101 parts",
      method: "POST",
      path: `${s()}/messages`,
      body: { content: Array.from({ length: 101 }, () => ({ type: "text", text: "x" })) },
      status: 422,
      code: V,
    },
    { name: "part of another type", method: "POST", path: `${s()}/messages`, body: { content: [{ type: "image", url: "x" }] }, status: 422, code: V },
    { name: "NUL in a part", method: "POST", path: `${s()}/messages`, body: { content: [{ type: "text", text: "a\u0000" }] }, status: 422, code: V },
    { name: "unknown onBusy", method: "POST", path: `${s()}/messages`, body: { content: "hi", onBusy: "sometimes" }, status: 422, code: V },
    {
      name: "idempotency key of 201 characters",
      method: "POST",
      path: `${s()}/messages`,
      body: { content: "hi" },
      headers: { "idempotency-key": "k".repeat(201) },
      status: 422,
      code: V,
    },
  ],
  "GET /api/v1/sessions/[id]/stream": () => [
    ...idCases("GET", (id) => `/api/v1/sessions/${id}/stream`),
    ...getCases(`${s()}/stream`, [
      ["after not a number", "after=x"],
      ["after past bigint", `after=${INT64_OVER}`],
    ]),
    { name: "Last-Event-ID not a seq", method: "GET", path: `${s()}/stream`, headers: { "last-event-id": "abc" }, status: 422, code: V },
    { name: "Last-Event-ID past bigint", method: "GET", path: `${s()}/stream`, headers: { "last-event-id": INT64_OVER }, status: 422, code: V },
    { name: "Last-Event-ID negative", method: "GET", path: `${s()}/stream`, headers: { "last-event-id": "-1" }, status: 422, code: V },
  ],
  "GET /api/v1/sessions/[id]/sandbox": () => [...idCases("GET", (id) => `/api/v1/sessions/${id}/sandbox`), ...getCases(`${s()}/sandbox`)],
  "GET /api/v1/sessions/[id]/sandbox/files": () => [
    ...idCases("GET", (id) => `/api/v1/sessions/${id}/sandbox/files`),
    ...getCases(`${s()}/sandbox/files`, [
      ["NUL in path", "path=a%00b"],
      ["path of 5000 characters", `path=${"a".repeat(5000)}`],
      ["limit 0", "limit=0"],
      ["limit 5001", "limit=5001"],
      ["recursive (not offered)", "recursive=1"],
    ]),
  ],
  "GET /api/v1/sessions/[id]/sandbox/file": () => [
    ...idCases("GET", (id) => `/api/v1/sessions/${id}/sandbox/file?path=a.txt`),
    ...getCases(`${s()}/sandbox/file?path=a.txt`, [
      ["maxBytes 0", "maxBytes=0"],
      ["maxBytes over 1 MiB", "maxBytes=1048577"],
      ["maxBytes not a number", "maxBytes=x"],
    ]),
    { name: "no path", method: "GET", path: `${s()}/sandbox/file`, status: 422, code: V },
    { name: "empty path", method: "GET", path: `${s()}/sandbox/file?path=`, status: 422, code: V },
    { name: "NUL in path", method: "GET", path: `${s()}/sandbox/file?path=a%00b`, status: 422, code: V },
  ],
  "POST /api/v1/sessions/[id]/sandbox/start": () => [
    ...noBodyCases("POST", `${s()}/sandbox/start`),
    ...idCases("POST", (id) => `/api/v1/sessions/${id}/sandbox/start`),
  ],
  "GET /api/v1/status": () => getCases("/api/v1/status"),
  "GET /api/v1/usage": () =>
    getCases("/api/v1/usage", [
      ["days 0", "days=0"],
      ["days 367", "days=367"],
      ["days 1.5", "days=1.5"],
      ["days empty", "days="],
      ["days not a number", "days=week"],
    ]),
  "POST /v1/chat/completions": () => [
    ...bodyCases("POST", {
      path: () => "/v1/chat/completions",
      valid: () => ({ model: f.agentName, messages: [{ role: "user", content: "hi" }] }),
      strict: false,
      lines: ["model"],
    }).filter((c) => c.name !== "deeply nested JSON"),
    {
      name: "no user message",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, messages: [{ role: "system", content: "hi" }] },
      status: 422,
      code: V,
    },
    { name: "empty messages", method: "POST", path: "/v1/chat/completions", body: { model: f.agentName, messages: [] }, status: 422, code: V },
    {
      name: "unknown model",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: "no-such-agent", messages: [{ role: "user", content: "hi" }] },
      status: 404,
      code: "not_found",
    },
    {
      name: "session header not a session",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, messages: [{ role: "user", content: "hi" }] },
      headers: { "x-keel-session-id": "x".repeat(3000) },
      status: 404,
      code: "not_found",
    },
    {
      name: "huge last message (900 KB)",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, messages: [{ role: "user", content: "x".repeat(900_000) }] },
      status: 422,
      code: V,
    },
    {
      name: "NUL in the user message",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, messages: [{ role: "user", content: "a\u0000b" }] },
      status: 422,
      code: V,
    },
    {
      name: "NUL in the user message, streamed",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, stream: true, messages: [{ role: "user", content: "a\u0000b" }] },
      status: 422,
      code: V,
    },
    {
      name: "stream not a boolean",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, stream: "yes", messages: [{ role: "user", content: "hi" }] },
      status: 422,
      code: V,
    },
    {
      name: "idempotency key of 201 characters",
      method: "POST",
      path: "/v1/chat/completions",
      body: { model: f.agentName, messages: [{ role: "user", content: "hi" }] },
      headers: { "idempotency-key": "k".repeat(201) },
      status: 422,
      code: V,
    },
  ],
  "GET /v1/models": () => getCases("/v1/models"),
  "GET /v1/models/[id]": () => [...idCases("GET", (id) => `/v1/models/${id}`, undefined, [404, "model_not_found"]), ...getCases(`/v1/models/${f.agentName}`)],
  // Unknown OpenAI-compatible paths: OpenAI's JSON 404, with or without credentials.
  "GET /v1/[...rest]": () => [
    { name: "unknown path", method: "GET", path: "/v1/embeddings", status: 404, code: "unknown_url" },
    { name: "unknown path, NUL", method: "GET", path: "/v1/nope%00", status: 404, code: "unknown_url" },
  ],
  "POST /v1/[...rest]": () => [{ name: "unknown path, malformed JSON", method: "POST", path: "/v1/completions", raw: "{x", status: 404, code: "unknown_url" }],
  "PUT /v1/[...rest]": () => [{ name: "unknown path", method: "PUT", path: "/v1/files/x", body: {}, status: 404, code: "unknown_url" }],
  "PATCH /v1/[...rest]": () => [{ name: "unknown path", method: "PATCH", path: "/v1/a/b/c", body: {}, status: 404, code: "unknown_url" }],
  "DELETE /v1/[...rest]": () => [{ name: "unknown path", method: "DELETE", path: "/v1/files/x", status: 404, code: "unknown_url" }],
};

describe("bad input on every route", () => {
  test("the matrix covers every route and method on disk, and nothing else", () => {
    expect(Object.keys(matrix).sort()).toEqual(apiRoutes());
  });

  test("the right 4xx with a JSON error, zero 5xx, nothing written", async () => {
    const before = await fingerprint();
    const wrong: unknown[] = [];
    let n = 0;
    for (const [key, cases] of Object.entries(matrix)) {
      for (const c of cases()) {
        const r = await send(c);
        n++;
        const ok =
          c.status < 400
            ? r.status === c.status
            : r.status === c.status && r.body?.error?.code === c.code && typeof r.body.error.message === "string" && typeof r.body.error.details === "object";
        if (!ok)
          wrong.push({
            key,
            case: c.name,
            path: c.path.slice(0, 120),
            want: `${c.status} ${c.code}`,
            got: `${r.status} ${r.body?.error?.code ?? r.text.slice(0, 160)}`,
          });
      }
    }
    expect(wrong).toEqual([]);
    expect(n).toBeGreaterThan(300);
    expect(await fingerprint()).toEqual(before);
    expect(server.output()).not.toMatch(/request failed|"level":50/);
  }, 240_000);
});
