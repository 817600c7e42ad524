// The shapes the REST API reads and answers, as JSON on the wire (dates are ISO strings, bigint
// seqs are decimal strings). Browser-safe: zod and constant lists only, so the dashboard, the
// desktop and the server share them. The route table (./api.ts) names one of these per route.
import { z } from "zod";
import { BUSY_POLICIES, ROLES, RUN_STATUSES, SANDBOX_STATES, TEAM_SLUG } from "./vocabulary.js";

/** Row ids (Postgres uuid): any 8-4-4-4-12 hex, as core's isUuid accepts. */
export const Id = z.guid();
/** A Date as JSON.stringify writes it, or a timestamp Postgres rendered inside json_build_object. */
export const Timestamp = z.iso.datetime({ offset: true });
/** A bigint (event seq) as JSON: a decimal string. */
export const SeqString = z.string().regex(/^\d{1,19}$/);
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/** A one-line string: no control characters (names, titles, emails, ids). */
export const line = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f]*$/, "control characters are not allowed");

const INT64_MAX = 9223372036854775807n;
/** Query strings arrive as text: these parse them (and document them as strings in OpenAPI). */
export const queryParam = {
  // abort: the refine's BigInt() must never see a string the regex refused (it throws: a 500).
  seq: z
    .string()
    .regex(/^\d{1,19}$/, { error: "must be a non-negative integer below 2^63", abort: true })
    .refine((s) => BigInt(s) <= INT64_MAX, "must be a non-negative integer below 2^63")
    .transform((s) => BigInt(s)),
  int: (min: number, max: number) =>
    z
      .string()
      .regex(/^\d{1,10}$/, "must be an integer")
      .transform(Number)
      .pipe(z.number().int().min(min).max(max)),
};

/** Every error answer of /api/v1: one code to branch on, a sentence for a person, details. */
export const ErrorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()) }) })
  .meta({ id: "Error" });
/** The OpenAI-compatible paths (/v1) answer OpenAI's error shape, Keel's code and details kept. */
export const OpenAiErrorBody = z
  .object({ error: z.object({ message: z.string(), type: z.string(), param: z.null(), code: z.string(), details: z.record(z.string(), z.unknown()) }) })
  .meta({ id: "OpenAiError" });

/** Team secret names: what a config names instead of holding a credential. */
export const SECRET_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;
const secretName = z.string().regex(SECRET_NAME, "a secret name: UPPER_SNAKE_CASE, up to 128 characters");
/** Workers call these URLs: http: and https: only (file:, gopher: and the like never). */
const httpUrl = z
  .string()
  .url()
  .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), "only http: and https: URLs");

/**
 * An agent's configuration. The sandbox policy's own fields are checked by core (tenancy.ts adds
 * the strict policy check, which needs the egress parser, not browser-safe).
 */
export const AgentConfig = z.object({
  model: z.string().min(1).max(200),
  instructions: z.string().max(100_000).default(""),
  /** Tool names, or { name, requiresApproval } to require a human's approval on this agent. */
  tools: z
    .array(z.union([z.string().min(1).max(64), z.object({ name: z.string().min(1).max(64), requiresApproval: z.boolean().optional() })]))
    .max(200)
    .default([]),
  sandboxPolicy: z.record(z.string(), z.unknown()).default({}),
  mcpServers: z
    .array(
      z
        .object({
          name: z.string().regex(/^[a-z0-9_-]{1,32}$/, "lowercase letters, digits, _ and -, up to 32"),
          url: httpUrl,
          allowTools: z.array(z.string().min(1).max(64)).max(100).default([]),
          /** Header name → team secret holding its value (resolved by the worker; configs never hold credentials). */
          headerSecrets: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, "a header name"), secretName).optional(),
          headers: z
            .record(z.string(), z.string())
            .refine(
              () => false,
              'header values are not stored in agent configs: put each value in a team secret (Settings → Secrets) and name it in headerSecrets, e.g. { "Authorization": "GITHUB_MCP_AUTH" }',
            )
            .optional(),
        })
        .strict(),
    )
    .max(20)
    .default([]),
  provider: z
    .object({
      kind: z.enum(["demo", "openai-compatible"]).optional(),
      baseUrl: httpUrl.optional(),
      /** Name of the team secret holding the provider's API key (required to send a key to an agent's own baseUrl). */
      apiKeySecret: secretName.optional(),
      maxRetries: z.number().int().min(0).max(10).optional(),
      timeoutMs: z.number().int().min(100).max(600_000).optional(),
    })
    .strict()
    .default({}),
});

// mcpServers without its default: left out means "keep" (update) or "not given" (create) to core's
// protected-field check, so a member's edit does not reset them.
const agentBody = { ...AgentConfig.shape, model: line(200).min(1), mcpServers: AgentConfig.shape.mcpServers.removeDefault().optional() };
export const AgentCreateBody = z.strictObject({ name: z.string(), ...agentBody });
export const AgentUpdateBody = z.strictObject(agentBody);

/** An agent's current version as stored (mcpServers without any legacy header values). */
export const Agent = z.object({
  id: Id,
  name: z.string(),
  version: z.number().int(),
  model: z.string(),
  instructions: z.string(),
  tools: z.array(z.union([z.string(), z.object({ name: z.string(), requiresApproval: z.boolean().optional() })])),
  sandboxPolicy: z.record(z.string(), z.unknown()),
  provider: AgentConfig.shape.provider.removeDefault().loose(),
  mcpServers: z.array(z.record(z.string(), z.unknown())),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type AgentCreateInput = z.input<typeof AgentCreateBody>;
export type AgentUpdateInput = z.input<typeof AgentUpdateBody>;

/** A queued run with nextAttemptAt is retrying after a failed attempt. */
export const ActiveRun = z.object({
  id: Id,
  status: z.enum(RUN_STATUSES),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  nextAttemptAt: Timestamp.nullable(),
  lastError: z.object({ code: z.string().optional(), message: z.string().optional() }).loose().nullable(),
});
export const SessionRow = z.object({
  id: Id,
  agentId: Id,
  agentName: z.string(),
  agentVersion: z.number().int(),
  title: z.string().nullable(),
  status: z.string(),
  lastSeq: SeqString,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  activeRun: ActiveRun.nullable(),
});
export const SessionQuery = z.strictObject({
  cursor: z.string().max(500).optional(),
  limit: queryParam.int(1, 200).optional(),
  agentId: z.string().max(100).optional(),
  status: z.enum(["active", "idle", "archived"]).optional(),
  q: z.string().max(200).optional(),
});

/** One log event; `payload` is the stored JSON verbatim. */
export const SessionEvent = z.object({ seq: SeqString, type: z.string(), runId: Id.nullable(), createdAt: Timestamp, payload: z.unknown() });
export const MessageBody = z.strictObject({
  content: z.union([
    z
      .string()
      .min(1)
      .max(256 * 1024),
    z
      .array(z.strictObject({ type: z.literal("text"), text: z.string().max(256 * 1024) }))
      .min(1)
      .max(100),
  ]),
  onBusy: z.enum(BUSY_POLICIES).default("enqueue"),
});
export const Posted = z.object({ seq: SeqString, runId: Id, disposition: z.enum(["started", "queued", "interrupting"]), duplicate: z.boolean() });

export const Run = z.object({
  id: Id,
  sessionId: Id,
  teamId: Id,
  status: z.enum(RUN_STATUSES),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  takeovers: z.number().int(),
  lastError: z.unknown(),
  cancelRequested: z.boolean(),
  interruptRequested: z.boolean(),
  usage: z.object({ promptTokens: z.number(), completionTokens: z.number() }),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  nextAttemptAt: Timestamp.nullable(),
});

const SandboxState = z.enum(SANDBOX_STATES);
export const SandboxSummary = z.object({
  id: Id,
  sessionId: Id,
  driver: z.string(),
  state: SandboxState,
  lastError: z.string().nullable(),
  lastActiveAt: Timestamp,
  createdAt: Timestamp,
});
export const SessionSandbox = z.object({
  sessionId: Id,
  sandbox: z
    .object({
      id: Id,
      driver: z.string(),
      state: SandboxState,
      lastError: z.string().nullable(),
      lastActiveAt: Timestamp,
      createdAt: Timestamp,
      updatedAt: Timestamp.optional(),
      terminatedAt: Timestamp.nullable(),
    })
    .nullable(),
  policy: z
    .object({
      template: z.string(),
      resources: z.object({ cpuSeconds: z.number(), memoryMb: z.number(), maxProcesses: z.number(), maxFileSizeMb: z.number() }).loose(),
      secrets: z.array(z.string()),
      idleTimeoutMs: z.number(),
      ttlMs: z.number(),
      egress: z.union([z.literal("none"), z.array(z.string())]),
    })
    .nullable(),
  policyError: z.string().optional(),
  filesAvailable: z.boolean(),
  note: z.string(),
});
const workspacePath = z
  .string()
  .max(4096)
  .refine((p) => !p.includes("\0"), "must not contain NUL");
export const FilesQuery = z.strictObject({ path: workspacePath.default("."), limit: queryParam.int(1, 5000).optional() });
export const FileQuery = z.strictObject({ path: workspacePath.min(1), maxBytes: queryParam.int(1, 1_048_576).optional() });
export const FileList = z.object({
  path: z.string(),
  entries: z.array(z.object({ path: z.string(), type: z.enum(["file", "directory", "symlink", "other"]), sizeBytes: z.number() })),
  truncated: z.boolean(),
});
export const SandboxFile = z.union([
  z.object({ path: z.string(), sizeBytes: z.number(), truncated: z.boolean(), maxBytes: z.number(), binary: z.literal(false), content: z.string() }),
  z.object({ path: z.string(), sizeBytes: z.number(), truncated: z.boolean(), maxBytes: z.number(), binary: z.literal(true), content: z.null() }),
]);

export const Principal = z.object({ teamId: Id, role: Role, actor: z.string(), userId: Id.nullable(), apiKeyId: Id.nullable() });
export const Me = Principal.extend({ csrfToken: z.string().nullable(), platformAdmin: z.boolean() });
export const LoginBody = z.strictObject({ email: line(254), password: z.string().max(1024) });
export const LoginAnswer = z.object({ csrfToken: z.string(), expiresAt: Timestamp, teamId: Id, role: Role, actor: z.string() });
export const Member = z.object({ userId: Id, email: z.string(), role: Role, createdAt: Timestamp });
export const ApiKeyInfo = z.object({
  id: Id,
  name: z.string(),
  prefix: z.string(),
  role: Role,
  createdAt: Timestamp,
  lastUsedAt: Timestamp.nullable(),
  revokedAt: Timestamp.nullable(),
  revokedReason: z.enum(["revoked", "creator_removed", "creator_demoted"]).nullable(),
  /** May call the platform routes while its creator is a platform admin. */
  platform: z.boolean(),
  createdBy: z.object({ userId: Id, email: z.string() }).nullable(),
});
export const Secret = z.object({ name: z.string(), allowedHosts: z.array(z.string()), updatedAt: Timestamp });
export const AuditEntry = z.object({
  id: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string().nullable(),
  details: z.unknown(),
  createdAt: Timestamp,
});

export const PendingApproval = z.object({
  sessionId: Id,
  sessionTitle: z.string().nullable(),
  agentId: Id,
  agentName: z.string(),
  runId: Id,
  callId: z.string(),
  tool: z.string(),
  arguments: z.string(),
  argumentsTruncated: z.boolean(),
  requestedAt: Timestamp,
});

export const FleetStatus = z.object({
  workers: z.array(z.object({ id: z.string(), hostname: z.string(), version: z.string(), startedAt: Timestamp, heartbeatAt: Timestamp, alive: z.boolean() })),
  queueDepth: z.number().int(),
  activeRuns: z.number().int(),
  waitingApproval: z.number().int(),
});
const UsageTotals = z.object({ runs: z.number().int(), promptTokens: z.number(), completionTokens: z.number(), totalTokens: z.number() });
export const TeamUsage = z.object({
  days: z.number().int(),
  since: Timestamp,
  totals: UsageTotals,
  byAgent: z.array(UsageTotals.extend({ agentId: Id, agentName: z.string() })),
});

/** OpenAI clients send many optional fields (temperature, tools, ...): accepted and ignored. */
export const ChatCompletionBody = z.looseObject({
  model: line(100).min(1),
  messages: z
    .array(z.looseObject({ role: z.string().max(20), content: z.unknown().optional() }))
    .min(1)
    .max(10_000),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
});
export const ChatCompletion = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number().int(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number().int(),
      message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
      logprobs: z.null(),
      finish_reason: z.string(),
    }),
  ),
  usage: z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() }),
});
export const Model = z.object({ id: z.string(), object: z.literal("model"), created: z.number().int(), owned_by: z.string() });

/** Teams and platform operators (issue 18). */
export const TeamSlug = z.string().regex(TEAM_SLUG, "lowercase letters, digits and '-', starting with a letter or digit, up to 64");
export const TeamName = line(200).min(1);
export const PlatformTeam = z.object({
  id: Id,
  slug: z.string(),
  name: z.string(),
  createdAt: Timestamp,
  suspendedAt: Timestamp.nullable(),
  suspendedReason: z.string().nullable(),
  members: z.number().int(),
});
export const PlatformAdmin = z.object({ userId: Id, email: z.string() });
export const MyTeam = z.object({ teamId: Id, slug: z.string(), name: z.string(), role: Role, suspended: z.boolean(), current: z.boolean() });
export const InviteBody = z.strictObject({ email: line(254), role: Role });
export const InvitationCreated = z.object({ id: Id, token: z.string(), email: z.string(), role: Role, expiresAt: Timestamp });
export const Invitation = z.object({
  id: Id,
  email: z.string(),
  role: Role,
  createdBy: z.string(),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  expired: z.boolean(),
});
export const InvitationToken = z.string().min(1).max(200);
export const InvitationPreview = z.object({
  email: z.string(),
  role: Role,
  teamSlug: z.string(),
  teamName: z.string(),
  expiresAt: Timestamp,
  existingAccount: z.boolean(),
});
