// The OpenAPI 3.1 description of /api/v1 and /v1, written by hand from a compact route table.
// Request bodies are named here; the zod schemas in the route files are what is enforced.
type Op = [method: string, path: string, summary: string, opts?: { body?: string; status?: number; auth?: false; sse?: boolean }];

const ops: Op[] = [
  ["post", "/api/v1/auth/login", "Log in; sets the keel_session cookie and returns csrfToken", { body: "{ email, password }", auth: false }],
  ["post", "/api/v1/auth/logout", "Log out", { status: 204 }],
  ["get", "/api/v1/me", "The caller: team, role, actor (and csrfToken for cookie sessions)"],
  ["post", "/api/v1/me/password", "Change your own password (dashboard logins only; API keys get 403); wrong current password 403 wrong_password; your other logins end", { body: "{ currentPassword, newPassword }", status: 204 }],
  ["get", "/api/v1/agents", "List agents (current version of each)"],
  ["post", "/api/v1/agents", "Create an agent (version 1)", { body: "{ name, model, instructions?, tools?, sandboxPolicy?, provider?, mcpServers? }", status: 201 }],
  ["get", "/api/v1/agents/{id}", "Get an agent"],
  ["put", "/api/v1/agents/{id}", "Write a new version of an agent", { body: "{ model, instructions?, tools?, sandboxPolicy?, provider?, mcpServers? }" }],
  ["delete", "/api/v1/agents/{id}", "Delete an agent (admin)", { status: 204 }],
  ["get", "/api/v1/sessions", "List sessions, newest first: ?cursor, limit (1-200), agentId, status=active|idle|archived, q. activeRun: { id, status, attempt, maxAttempts, nextAttemptAt, lastError }; a queued run with nextAttemptAt is retrying after a failed attempt"],
  ["post", "/api/v1/sessions", "Create a session", { body: "{ agentId, title? }", status: 201 }],
  ["get", "/api/v1/sessions/{id}", "Get a session"],
  ["delete", "/api/v1/sessions/{id}", "Delete a session (cancels its runs)", { status: 204 }],
  ["post", "/api/v1/sessions/{id}/archive", "Archive or unarchive", { body: "{ archived: boolean }" }],
  ["post", "/api/v1/sessions/{id}/messages", "Post a message (header Idempotency-Key); answers the run", { body: "{ content: string | [{type:'text',text}], onBusy?: 'enqueue'|'reject'|'interrupt' }", status: 202 }],
  ["get", "/api/v1/sessions/{id}/events", "Events after a seq: ?after, limit (1-5000); payload is the stored JSON verbatim"],
  ["get", "/api/v1/sessions/{id}/stream", "Server-Sent Events: id = seq, event = type, data = payload; `event: delta` (no id) for tokens; resume with Last-Event-ID or ?after. A web process shutting down sends `retry: <ms>` and `event: shutdown` (no id), then ends the stream: reconnect with Last-Event-ID. Credentials are re-checked at every heartbeat: revoked ones end the stream with `event: unauthorized`; after KEEL_SSE_MAX_AGE_MS the stream ends with `event: reconnect`", { sse: true }],
  ["post", "/api/v1/sessions/{id}/cancel", "Cancel queued runs, ask the running one to stop"],
  ["post", "/api/v1/sessions/{id}/approvals/{callId}", "Approve or deny a tool call", { body: "{ approve: boolean, reason? }" }],
  ["get", "/api/v1/sessions/{id}/sandbox", "The session's sandbox (state, driver, policy summary, filesAvailable, note; sandbox null = none yet); never wakes it"],
  ["get", "/api/v1/sessions/{id}/sandbox/files", "List one workspace directory: ?path (default .), limit (1-5000); 409 sandbox_not_running unless ready"],
  ["get", "/api/v1/sessions/{id}/sandbox/file", "Read a workspace file (read-only): ?path, maxBytes (default 262144); binary files come back as { binary: true, content: null }"],
  ["post", "/api/v1/sessions/{id}/sandbox/start", "Start the session's sandbox: resume a suspended one, or create one (member)"],
  ["get", "/api/v1/runs/{id}", "Get a run (status, attempts, nextAttemptAt while retrying, takeovers, token usage)"],
  ["get", "/api/v1/members", "Team members"],
  ["post", "/api/v1/members", "Add a member (admin); an email with an account elsewhere joins with its own password (same answer); already a member: 409 member_exists", { body: "{ email, password, role }", status: 201 }],
  ["patch", "/api/v1/members/{userId}", "Change a member's role (admin); their API keys above the new role are revoked; the last admin cannot be demoted (409)", { body: "{ role }" }],
  ["delete", "/api/v1/members/{userId}", "Remove a member (admin); their logins to the team end and the API keys they created are revoked; the last admin cannot be removed (409)", { status: 204 }],
  ["get", "/api/v1/api-keys", "API keys, without the keys (admin): createdBy { userId, email }, revokedAt, revokedReason (revoked | creator_removed | creator_demoted)"],
  ["post", "/api/v1/api-keys", "Create an API key; the key is shown once (admin)", { body: "{ name, role }", status: 201 }],
  ["delete", "/api/v1/api-keys/{id}", "Revoke an API key (admin)", { status: 204 }],
  ["get", "/api/v1/secrets", "Secret names (values are never returned)"],
  ["put", "/api/v1/secrets/{name}", "Write a secret (admin); AES-256-GCM at rest; allowedHosts binds it to the hosts the workers may send it to", { body: "{ value, allowedHosts? }", status: 204 }],
  ["delete", "/api/v1/secrets/{name}", "Delete a secret (admin)", { status: 204 }],
  ["get", "/api/v1/audit", "Audit log, newest first: ?before (cursor), limit (admin)"],
  ["get", "/api/v1/status", "Workers and heartbeats, queue depth, active runs"],
  ["get", "/api/v1/sandboxes", "The team's live sandboxes (not terminated), newest first, at most 200: id, sessionId, driver, state, lastError, lastActiveAt, createdAt"],
  ["get", "/api/v1/usage", "Tokens used by the team's runs in the last ?days (1-366, default 30): totals and per agent"],
  ["get", "/v1/models", "OpenAI-compatible: agents as models"],
  ["get", "/v1/models/{id}", "OpenAI-compatible: one agent as a model, by name"],
  ["post", "/v1/chat/completions", "OpenAI-compatible chat; header X-Keel-Session-Id binds a session (returned when created). Errors are OpenAI-shaped; once the message is posted they carry x-should-retry: false", { body: "{ model, messages, stream?, stream_options?: { include_usage? } }" }],
];

const errorSchema = { type: "object", required: ["error"], properties: { error: { type: "object", required: ["code", "message", "details"], properties: { code: { type: "string" }, message: { type: "string" }, details: { type: "object" } } } } };

export function openApiDocument() {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [method, path, summary, o = {}] of ops) {
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    (paths[path] ??= {})[method] = {
      summary,
      ...(params.length ? { parameters: params } : {}),
      ...(o.auth === false ? { security: [] } : {}),
      ...(o.body ? { requestBody: { required: true, description: o.body, content: { "application/json": { schema: { type: "object" } } } } } : {}),
      responses: {
        [String(o.status ?? 200)]: { description: "success", ...(o.status === 204 ? {} : { content: { [o.sse ? "text/event-stream" : "application/json"]: { schema: o.sse ? { type: "string" } : { type: "object" } } } }) },
        "4XX": { description: "error", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: { title: "Keel API", version: "1" },
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "kk_… API key" }, cookie: { type: "apiKey", in: "cookie", name: "keel_session", description: "plus X-CSRF-Token on state changes" } },
    },
    security: [{ apiKey: [] }, { cookie: [] }],
    paths,
  };
}
