// The REST API's one route table: method, path, params, query, body, answer, minimum role and a
// summary for every route of /api/v1 and /v1. The route files take their schemas from here
// (server/src/http.ts `route(api.x, handler)`), openapi.json is generated from it, and the typed
// client (./api-client.ts) is written once against it. Browser-safe: zod only.
// A route file without an entry, or an entry without a route file, fails server/test/contract.test.ts.
import { z } from "zod";
import type { Role } from "./vocabulary.js";
import * as s from "./api-schemas.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export type ApiRoute = {
  method: HttpMethod;
  /** OpenAPI template: `/api/v1/sessions/{id}`. */
  path: string;
  summary: string;
  /** "none": no credentials (login, the document itself). Otherwise a cookie session or an API key. */
  auth: "required" | "none";
  /** The lowest role allowed (null without auth). */
  role: Role | null;
  params?: z.ZodObject;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Request headers the route reads (documented; sent as given). */
  headers?: z.ZodObject;
  /** The success status and its JSON body (null: no body, 204). */
  status: number;
  response: z.ZodType | null;
  /** "always": the answer is text/event-stream; "optional": it is when the body asks (stream: true). */
  sse?: "always" | "optional";
  /** The error body: Keel's, or OpenAI's on the OpenAI-compatible paths. */
  errors: "keel" | "openai";
  /** Platform routes: only a platform admin (a cookie session of one, or a platform key); others 403 platform_admin_required. */
  platform?: boolean;
};

type Def = Omit<ApiRoute, "auth" | "role" | "status" | "response" | "errors"> & Partial<Pick<ApiRoute, "auth" | "role" | "status" | "response" | "errors">>;
type Defaults = { auth: "required"; role: Role; status: 200; response: null; errors: "keel" };

/** Fills the defaults: authenticated, viewer for GET and member otherwise, 200, Keel errors. */
function op<const D extends Def>(d: D): D & Omit<Defaults, keyof D> {
  const auth = d.auth ?? "required";
  return { auth, role: auth === "none" ? null : d.method === "GET" ? "viewer" : "member", status: 200, response: null, errors: "keel", ...d } as D &
    Omit<Defaults, keyof D>;
}

const ById = z.object({ id: s.Id });
const ByUserId = z.object({ userId: s.Id });
// Secret names and model names are checked by core (422 naming the rule; model_not_found).
const BySecretName = z.object({ name: z.string() });
const ByCall = z.object({ id: s.Id, callId: z.string().min(1).max(200) });
const ByModel = z.object({ id: z.string() });
const IdempotencyKey = z.object({ "idempotency-key": z.string().min(1).max(200).optional() });
const list = <K extends string, T extends z.ZodType>(key: K, item: T) => z.object({ [key]: z.array(item) } as { [P in K]: z.ZodArray<T> });

export const api = {
  auth: {
    login: op({
      method: "POST",
      path: "/api/v1/auth/login",
      auth: "none",
      body: s.LoginBody,
      response: s.LoginAnswer,
      summary: "Log in; sets the keel_session cookie and returns csrfToken (send it as X-CSRF-Token on state changes)",
    }),
    logout: op({ method: "POST", path: "/api/v1/auth/logout", role: "viewer", status: 204, summary: "Log out" }),
  },
  me: {
    get: op({ method: "GET", path: "/api/v1/me", response: s.Me, summary: "The caller: team, role, actor (and csrfToken for cookie sessions)" }),
    teams: op({
      method: "GET",
      path: "/api/v1/me/teams",
      response: list("teams", s.MyTeam),
      summary: "Your teams (an API key: its own team), the current one marked",
    }),
    switchTeam: op({
      method: "POST",
      path: "/api/v1/me/team",
      role: "viewer",
      body: z.strictObject({ teamId: s.Id }),
      response: s.Me,
      summary:
        "Switch this dashboard login to another of your teams (API keys get 403: a key belongs to one team); not a member: 404; suspended: 403 team_suspended",
    }),
    password: op({
      method: "POST",
      path: "/api/v1/me/password",
      role: "viewer",
      status: 204,
      body: z.strictObject({ currentPassword: z.string().max(1024), newPassword: z.string().max(1024) }),
      summary: "Change your own password (dashboard logins only; API keys get 403); wrong current password 403 wrong_password; your other logins end",
    }),
  },
  agents: {
    list: op({ method: "GET", path: "/api/v1/agents", response: list("agents", s.Agent), summary: "List agents (current version of each)" }),
    create: op({
      method: "POST",
      path: "/api/v1/agents",
      body: s.AgentCreateBody,
      status: 201,
      response: z.object({ id: s.Id, name: z.string(), version: z.number().int() }),
      summary: "Create an agent (version 1)",
    }),
    get: op({ method: "GET", path: "/api/v1/agents/{id}", params: ById, response: s.Agent, summary: "Get an agent" }),
    update: op({
      method: "PUT",
      path: "/api/v1/agents/{id}",
      params: ById,
      body: s.AgentUpdateBody,
      response: z.object({ id: s.Id, version: z.number().int() }),
      summary: "Write a new version of an agent; existing sessions keep theirs",
    }),
    delete: op({ method: "DELETE", path: "/api/v1/agents/{id}", params: ById, role: "admin", status: 204, summary: "Delete an agent (admin)" }),
  },
  sessions: {
    list: op({
      method: "GET",
      path: "/api/v1/sessions",
      query: s.SessionQuery,
      response: z.object({ sessions: z.array(s.SessionRow), nextCursor: z.string().nullable() }),
      summary: "List sessions, newest first (keyset cursor); a queued activeRun with nextAttemptAt is retrying after a failed attempt",
    }),
    create: op({
      method: "POST",
      path: "/api/v1/sessions",
      body: z.strictObject({ agentId: s.line(100), title: s.line(500).optional() }),
      status: 201,
      response: s.SessionRow,
      summary: "Create a session (answers the session as GET does)",
    }),
    get: op({
      method: "GET",
      path: "/api/v1/sessions/{id}",
      params: ById,
      response: s.SessionRow,
      summary: "Get a session: the shape of a list row (agent name, the run in progress)",
    }),
    delete: op({ method: "DELETE", path: "/api/v1/sessions/{id}", params: ById, status: 204, summary: "Delete a session (cancels its runs)" }),
    archive: op({
      method: "POST",
      path: "/api/v1/sessions/{id}/archive",
      params: ById,
      body: z.strictObject({ archived: z.boolean() }),
      response: z.object({ id: s.Id, archived: z.boolean() }),
      summary: "Archive or unarchive",
    }),
    messages: op({
      method: "POST",
      path: "/api/v1/sessions/{id}/messages",
      params: ById,
      headers: IdempotencyKey,
      body: s.MessageBody,
      status: 202,
      response: s.Posted,
      summary: "Post a message; answers the run (header Idempotency-Key makes retries safe)",
    }),
    events: op({
      method: "GET",
      path: "/api/v1/sessions/{id}/events",
      params: ById,
      query: z.strictObject({ after: s.queryParam.seq.optional(), limit: s.queryParam.int(1, 5000).optional() }),
      response: z.object({ events: z.array(s.SessionEvent), lastSeq: s.SeqString.nullable() }),
      summary: "Events after a seq; payload is the stored JSON verbatim",
    }),
    stream: op({
      method: "GET",
      path: "/api/v1/sessions/{id}/stream",
      params: ById,
      query: z.strictObject({ after: s.queryParam.seq.optional() }),
      headers: z.object({ "last-event-id": z.string().optional() }),
      response: z.string(),
      sse: "always",
      summary:
        "Server-Sent Events: id = seq, event = type, data = payload; `event: delta` (no id) for tokens; resume with Last-Event-ID or ?after. A web process shutting down sends `retry: <ms>` and `event: shutdown` (no id), then ends the stream: reconnect with Last-Event-ID. Credentials are re-checked at every heartbeat: revoked ones end the stream with `event: unauthorized`; after KEEL_SSE_MAX_AGE_MS the stream ends with `event: reconnect`",
    }),
    cancel: op({
      method: "POST",
      path: "/api/v1/sessions/{id}/cancel",
      params: ById,
      response: z.object({ cancelled: z.array(s.Id), stopping: z.array(s.Id) }),
      summary: "Cancel queued runs, ask the running one to stop",
    }),
    decide: op({
      method: "POST",
      path: "/api/v1/sessions/{id}/approvals/{callId}",
      params: ByCall,
      body: z.strictObject({ approve: z.boolean(), reason: z.string().max(2000).optional() }),
      response: z.object({ runId: s.Id, seq: s.SeqString }),
      summary: "Approve or deny a tool call",
    }),
  },
  sandbox: {
    get: op({
      method: "GET",
      path: "/api/v1/sessions/{id}/sandbox",
      params: ById,
      response: s.SessionSandbox,
      summary: "The session's sandbox (state, driver, policy summary, filesAvailable, note; sandbox null = none yet); never wakes it",
    }),
    files: op({
      method: "GET",
      path: "/api/v1/sessions/{id}/sandbox/files",
      params: ById,
      query: s.FilesQuery,
      response: s.FileList,
      summary: "List one workspace directory; 409 sandbox_not_running unless ready",
    }),
    file: op({
      method: "GET",
      path: "/api/v1/sessions/{id}/sandbox/file",
      params: ById,
      query: s.FileQuery,
      response: s.SandboxFile,
      summary: "Read a workspace file (read-only, default maxBytes 262144); binary files come back as { binary: true, content: null }",
    }),
    start: op({
      method: "POST",
      path: "/api/v1/sessions/{id}/sandbox/start",
      params: ById,
      response: s.SessionSandbox,
      summary: "Start the session's sandbox: resume a suspended one, or create one",
    }),
  },
  runs: {
    get: op({
      method: "GET",
      path: "/api/v1/runs/{id}",
      params: ById,
      response: s.Run,
      summary: "Get a run (status, attempts, nextAttemptAt while retrying, takeovers, token usage)",
    }),
  },
  members: {
    list: op({ method: "GET", path: "/api/v1/members", response: list("members", s.Member), summary: "Team members" }),
    add: op({
      method: "POST",
      path: "/api/v1/members",
      role: "admin",
      body: z.strictObject({ email: s.line(254), password: z.string().max(1024), role: s.Role }),
      status: 201,
      response: z.object({ userId: s.Id }),
      summary: "Add a member (admin); an email with an account elsewhere joins with its own password (same answer); already a member: 409 member_exists",
    }),
    setRole: op({
      method: "PATCH",
      path: "/api/v1/members/{userId}",
      params: ByUserId,
      role: "admin",
      body: z.strictObject({ role: s.Role }),
      response: z.object({ userId: s.Id, role: s.Role, keysRevoked: z.number().int() }),
      summary: "Change a member's role (admin); their API keys above the new role are revoked; the last admin cannot be demoted (409)",
    }),
    remove: op({
      method: "DELETE",
      path: "/api/v1/members/{userId}",
      params: ByUserId,
      role: "admin",
      status: 204,
      summary: "Remove a member (admin); their logins end and the API keys they created are revoked; the last admin cannot be removed (409)",
    }),
  },
  apiKeys: {
    list: op({
      method: "GET",
      path: "/api/v1/api-keys",
      role: "admin",
      response: list("apiKeys", s.ApiKeyInfo),
      summary: "API keys, without the keys (admin)",
    }),
    create: op({
      method: "POST",
      path: "/api/v1/api-keys",
      role: "admin",
      body: z.strictObject({ name: s.line(100).min(1), role: s.Role, platform: z.boolean().optional() }),
      status: 201,
      response: z.object({ id: s.Id, key: z.string(), prefix: z.string(), role: s.Role, platform: z.boolean() }),
      summary:
        "Create an API key for the team you are in; the key is in this answer only (admin). platform: true (platform admins only) lets it call the platform routes while you are one",
    }),
    revoke: op({ method: "DELETE", path: "/api/v1/api-keys/{id}", params: ById, role: "admin", status: 204, summary: "Revoke an API key (admin)" }),
  },
  invitations: {
    list: op({
      method: "GET",
      path: "/api/v1/invitations",
      role: "admin",
      response: list("invitations", s.Invitation),
      summary: "Invitations not yet accepted or withdrawn (admin)",
    }),
    create: op({
      method: "POST",
      path: "/api/v1/invitations",
      role: "admin",
      body: s.InviteBody,
      status: 201,
      response: s.InvitationCreated,
      summary: "Invite someone by link (admin): the token is in this answer only (the link is /invite#<token>); single use, expires (KEEL_INVITATION_TTL_MS)",
    }),
    revoke: op({ method: "DELETE", path: "/api/v1/invitations/{id}", params: ById, role: "admin", status: 204, summary: "Withdraw an invitation (admin)" }),
    lookup: op({
      method: "POST",
      path: "/api/v1/invitations/lookup",
      auth: "none",
      body: z.strictObject({ token: s.InvitationToken }),
      response: s.InvitationPreview,
      summary: "What an invitation is for (the token is the credential); used, expired or withdrawn: 410 invitation_used|invitation_expired|invitation_revoked",
    }),
    accept: op({
      method: "POST",
      path: "/api/v1/invitations/accept",
      auth: "none",
      body: z.strictObject({ token: s.InvitationToken, password: z.string().max(1024) }),
      response: s.LoginAnswer,
      summary:
        "Accept an invitation and log in (sets keel_session): a new email sets its password; an existing account gives its own (403 wrong_password); single use (410 invitation_used)",
    }),
  },
  platform: {
    listTeams: op({
      method: "GET",
      path: "/api/v1/platform/teams",
      platform: true,
      response: list("teams", s.PlatformTeam),
      summary: "Every team (platform admins)",
    }),
    createTeam: op({
      method: "POST",
      path: "/api/v1/platform/teams",
      platform: true,
      role: "viewer",
      body: z.strictObject({ slug: s.TeamSlug, name: s.TeamName.optional() }),
      status: 201,
      response: s.PlatformTeam,
      summary: "Create a team (platform admins); a slug in use: 409 team_exists",
    }),
    renameTeam: op({
      method: "PATCH",
      path: "/api/v1/platform/teams/{id}",
      params: ById,
      platform: true,
      role: "viewer",
      body: z.strictObject({ slug: s.TeamSlug.optional(), name: s.TeamName.optional() }),
      response: s.PlatformTeam,
      summary: "Rename a team: new slug and/or name (platform admins); a slug in use: 409 team_exists",
    }),
    deleteTeam: op({
      method: "DELETE",
      path: "/api/v1/platform/teams/{id}",
      params: ById,
      platform: true,
      role: "viewer",
      body: z.strictObject({ confirm: z.string().max(64) }),
      status: 204,
      summary:
        "Delete a team and everything it owns, confirmed by its slug in confirm (platform admins); its audit rows are kept; not the team you are acting in (409 own_team)",
    }),
    suspendTeam: op({
      method: "POST",
      path: "/api/v1/platform/teams/{id}/suspend",
      params: ById,
      platform: true,
      role: "viewer",
      body: z.strictObject({ reason: s.line(500).min(1) }),
      response: s.PlatformTeam,
      summary: "Suspend a team (platform admins): its keys and logins answer 403 team_suspended with the reason; its queued runs wait",
    }),
    resumeTeam: op({
      method: "POST",
      path: "/api/v1/platform/teams/{id}/resume",
      params: ById,
      platform: true,
      role: "viewer",
      response: s.PlatformTeam,
      summary: "Lift a suspension (platform admins); the queued runs are claimed again",
    }),
    inviteToTeam: op({
      method: "POST",
      path: "/api/v1/platform/teams/{id}/invitations",
      params: ById,
      platform: true,
      role: "viewer",
      body: s.InviteBody,
      status: 201,
      response: s.InvitationCreated,
      summary: "Invite someone to any team, e.g. its first admin (platform admins); the token is in this answer only",
    }),
    listAdmins: op({ method: "GET", path: "/api/v1/platform/admins", platform: true, response: list("admins", s.PlatformAdmin), summary: "Platform admins" }),
    grantAdmin: op({
      method: "POST",
      path: "/api/v1/platform/admins",
      platform: true,
      role: "viewer",
      body: z.strictObject({ email: s.line(254) }),
      status: 201,
      response: s.PlatformAdmin,
      summary: "Make an existing user a platform admin (platform admins); unknown email: 404",
    }),
    revokeAdmin: op({
      method: "DELETE",
      path: "/api/v1/platform/admins/{userId}",
      params: ByUserId,
      platform: true,
      role: "viewer",
      status: 204,
      summary: "Take platform admin away (platform admins); the last one: 409 last_platform_admin",
    }),
  },
  secrets: {
    list: op({ method: "GET", path: "/api/v1/secrets", response: list("secrets", s.Secret), summary: "Secret names and hosts (values are never returned)" }),
    put: op({
      method: "PUT",
      path: "/api/v1/secrets/{name}",
      params: BySecretName,
      role: "admin",
      status: 204,
      body: z.strictObject({
        value: z
          .string()
          .min(1)
          .max(64 * 1024),
        allowedHosts: z.array(z.string().min(1).max(300)).max(50).optional(),
      }),
      summary:
        "Write a secret (admin); AES-256-GCM at rest; allowedHosts binds it to the hosts the workers may send it to (a bound secret never enters a sandbox)",
    }),
    delete: op({ method: "DELETE", path: "/api/v1/secrets/{name}", params: BySecretName, role: "admin", status: 204, summary: "Delete a secret (admin)" }),
  },
  audit: {
    list: op({
      method: "GET",
      path: "/api/v1/audit",
      role: "admin",
      query: z.strictObject({ before: s.queryParam.seq.optional(), limit: s.queryParam.int(1, 500).optional() }),
      response: z.object({ entries: z.array(s.AuditEntry), nextCursor: z.string().nullable() }),
      summary: "Audit log, newest first (admin)",
    }),
  },
  approvals: {
    list: op({
      method: "GET",
      path: "/api/v1/approvals",
      query: z.strictObject({ limit: s.queryParam.int(1, 500).optional() }),
      response: z.object({ approvals: z.array(s.PendingApproval), total: z.number().int() }),
      summary: "Tool calls waiting for a human across the team's sessions, oldest first (decide with POST /api/v1/sessions/{id}/approvals/{callId})",
    }),
  },
  status: { get: op({ method: "GET", path: "/api/v1/status", response: s.FleetStatus, summary: "Workers and heartbeats, queue depth, active runs" }) },
  sandboxes: {
    list: op({
      method: "GET",
      path: "/api/v1/sandboxes",
      response: list("sandboxes", s.SandboxSummary),
      summary: "The team's live sandboxes (not terminated), newest first, at most 200",
    }),
  },
  usage: {
    get: op({
      method: "GET",
      path: "/api/v1/usage",
      query: z.strictObject({ days: s.queryParam.int(1, 366).optional() }),
      response: s.TeamUsage,
      summary: "Tokens used by the team's runs in the last ?days (default 30): totals and per agent",
    }),
  },
  openapi: {
    get: op({ method: "GET", path: "/api/v1/openapi.json", auth: "none", response: z.record(z.string(), z.unknown()), summary: "This document (OpenAPI 3.1)" }),
  },
  openai: {
    models: op({
      method: "GET",
      path: "/v1/models",
      errors: "openai",
      response: z.object({ object: z.literal("list"), data: z.array(s.Model) }),
      summary: "OpenAI-compatible: agents as models",
    }),
    model: op({
      method: "GET",
      path: "/v1/models/{id}",
      params: ByModel,
      errors: "openai",
      response: s.Model,
      summary: "OpenAI-compatible: one agent as a model, by name",
    }),
    chat: op({
      method: "POST",
      path: "/v1/chat/completions",
      errors: "openai",
      body: s.ChatCompletionBody,
      response: s.ChatCompletion,
      sse: "optional",
      headers: IdempotencyKey.extend({ "x-keel-session-id": z.string().max(100).optional() }),
      summary:
        "OpenAI-compatible chat; header X-Keel-Session-Id binds a session (returned when created). Errors are OpenAI-shaped; once the message is posted they carry x-should-retry: false",
    }),
  },
} as const satisfies Record<string, Record<string, ApiRoute>>;

/** Every entry of the table, flat. */
export const apiRoutes: readonly ApiRoute[] = Object.values(api).flatMap((group) => Object.values(group) as ApiRoute[]);

/** `/api/v1/sessions/{id}` → a RegExp for concrete paths (params are one segment each). */
export function pathPattern(path: string): RegExp {
  return new RegExp(
    `^${path
      .split("/")
      .map((seg) => (/^\{\w+\}$/.test(seg) ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
      .join("/")}/?$`,
  );
}
