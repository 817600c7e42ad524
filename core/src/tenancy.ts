// Teams, agents (versioned) and sessions. Every call takes the team it acts for; rows of other
// teams are invisible (NotFound), never Forbidden, so ids cannot be probed across teams.
import { z } from "zod";
import { ConflictError, NotFoundError, ValidationError } from "./errors.js";
import { pgCode, PgCode, withTransaction, type Pool } from "./db/pool.js";
import type { PrismaClient } from "./db/prisma.js";
import { isUuid } from "./engine/client.js";
import { cancelSessionRuns } from "./engine/lifecycle.js";
import { sandboxPolicy, sandboxResources } from "./sandbox/policy.js";
import { SECRET_NAME } from "./secrets.js";
import { requireRole, type Principal } from "./access/principal.js";
import { guardAgentConfig, type GuardedConfig } from "./agent/agent-guard.js";

/** Workers call these URLs: http: and https: only (file:, gopher: and the like never). */
const httpUrl = z.string().url().refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), "only http: and https: URLs");

const strictSandboxPolicy = sandboxPolicy.extend({ resources: sandboxResources.strict().prefault({}) }).strict();

export const AgentConfigSchema = z.object({
  model: z.string().min(1).max(200),
  instructions: z.string().max(100_000).default(""),
  /** Tool names, or { name, requiresApproval } to require a human's approval on this agent. */
  tools: z.array(z.union([z.string().min(1).max(64), z.object({ name: z.string().min(1).max(64), requiresApproval: z.boolean().optional() })])).max(200).default([]),
  /**
   * Stored as given (so later changes to the defaults apply), but checked now against the policy
   * schema, strictly: a typo or a bad egress entry is a 422 at save, not a surprise at tool time.
   */
  sandboxPolicy: z
    .record(z.string(), z.unknown())
    .default({})
    .superRefine((v, ctx) => {
      const r = strictSandboxPolicy.safeParse(v);
      if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: i.path as PropertyKey[], message: i.message });
    }),
  mcpServers: z.array(z.object({
    name: z.string().regex(/^[a-z0-9_-]{1,32}$/, "lowercase letters, digits, _ and -, up to 32"),
    url: httpUrl,
    allowTools: z.array(z.string().min(1).max(64)).max(100).default([]),
    /** Header name → team secret holding its value (resolved by the worker; configs never hold credentials). */
    headerSecrets: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, "a header name"), z.string().regex(SECRET_NAME, "a secret name: UPPER_SNAKE_CASE, up to 128 characters")).optional(),
    headers: z.record(z.string(), z.string()).refine(() => false, "header values are not stored in agent configs: put each value in a team secret (Settings → Secrets) and name it in headerSecrets, e.g. { \"Authorization\": \"GITHUB_MCP_AUTH\" }").optional(),
  }).strict()).max(20).default([]),
  provider: z.object({
    kind: z.enum(["demo", "openai-compatible"]).optional(),
    baseUrl: httpUrl.optional(),
    /** Name of the team secret holding the provider's API key (required to send a key to an agent's own baseUrl). */
    apiKeySecret: z.string().regex(SECRET_NAME, "a secret name: UPPER_SNAKE_CASE, up to 128 characters").optional(),
    maxRetries: z.number().int().min(0).max(10).optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
  }).strict().default({}),
});
export type AgentConfig = z.input<typeof AgentConfigSchema>;

const NameSchema = z.string().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, "letters, digits, space, . _ -; starting with a letter or digit");

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new ValidationError("invalid input", { issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
  return r.data;
}

export type SessionView = { id: string; teamId: string; agentId: string; agentVersion: number; status: string; lastSeq: bigint; title: string | null; createdAt: Date };

export class Tenancy {
  constructor(private readonly o: { prisma: PrismaClient; pool: Pool }) {}

  async createTeam(input: { slug: string; name: string }): Promise<{ id: string; slug: string; name: string }> {
    const data = parse(z.object({ slug: z.string().min(1).max(64).regex(/^[a-z0-9][a-z0-9-]*$/), name: z.string().min(1).max(200) }), input);
    try {
      return await this.o.prisma.team.create({ data, select: { id: true, slug: true, name: true } });
    } catch (err) {
      if ((err as { code?: string }).code === "P2002") throw new ConflictError("team_exists", "a team with this slug exists", { slug: data.slug });
      throw err;
    }
  }

  /**
   * `by`: the principal acting (its team and role; members may not set protected fields, see
   * agent/agent-guard.ts), or a team id for the operator's own calls (seeding, tests, the CLI).
   */
  async createAgent(by: string | Principal, input: { name: string } & AgentConfig): Promise<{ id: string; name: string; version: number }> {
    const teamId = actingTeam(by);
    const name = parse(NameSchema, input.name);
    let cfg = parse(AgentConfigSchema, input);
    if (typeof by !== "string") cfg = guardAgentConfig(by, input, cfg, undefined);
    try {
      const agent = await this.o.prisma.agent.create({
        data: {
          teamId, name, currentVersion: 1,
          versions: { create: { version: 1, model: cfg.model, instructions: cfg.instructions, tools: cfg.tools as object[], sandboxPolicy: cfg.sandboxPolicy as object, provider: cfg.provider, mcpServers: cfg.mcpServers } },
        },
      });
      return { id: agent.id, name: agent.name, version: 1 };
    } catch (err) {
      if ((err as { code?: string }).code === "P2002") throw new ConflictError("agent_exists", "an agent with this name exists in the team", { name });
      throw err;
    }
  }

  /** Writes a new version; sessions created earlier keep theirs. */
  async updateAgent(by: string | Principal, agentId: string, input: AgentConfig): Promise<{ id: string; version: number }> {
    const teamId = actingTeam(by);
    let cfg = parse(AgentConfigSchema, input);
    if (!isUuid(agentId)) throw new NotFoundError("Agent", agentId);
    return this.o.prisma.$transaction(async (tx) => {
      const agent = await tx.agent.findFirst({ where: { id: agentId, teamId, deletedAt: null } });
      if (!agent) throw new NotFoundError("Agent", agentId);
      const current = await tx.agentVersion.findFirst({ where: { agentId, version: agent.currentVersion } });
      const stored = { provider: (current?.provider ?? {}) as GuardedConfig["provider"], sandboxPolicy: current?.sandboxPolicy ?? {}, mcpServers: (current?.mcpServers ?? []) as GuardedConfig["mcpServers"] };
      if (typeof by !== "string") cfg = guardAgentConfig(by, input, cfg, stored);
      cfg = { ...cfg, mcpServers: keepLegacyHeaders(cfg.mcpServers, stored.mcpServers) };
      const version = agent.currentVersion + 1;
      await tx.agentVersion.create({ data: { agentId, version, model: cfg.model, instructions: cfg.instructions, tools: cfg.tools as object[], sandboxPolicy: cfg.sandboxPolicy as object, provider: cfg.provider, mcpServers: cfg.mcpServers } });
      await tx.agent.update({ where: { id: agentId }, data: { currentVersion: version } });
      return { id: agentId, version };
    });
  }

  async createSession(teamId: string, input: { agentId: string; title?: string }): Promise<SessionView> {
    if (!isUuid(input.agentId)) throw new NotFoundError("Agent", input.agentId);
    const agent = await this.o.prisma.agent.findFirst({ where: { id: input.agentId, teamId, deletedAt: null } });
    if (!agent) throw new NotFoundError("Agent", input.agentId);
    const s = await this.o.prisma.session.create({ data: { teamId, agentId: agent.id, agentVersion: agent.currentVersion, title: input.title ?? null } });
    return toView(s);
  }

  async getSession(teamId: string, sessionId: string): Promise<SessionView> {
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    const s = await this.o.prisma.session.findFirst({ where: { id: sessionId, teamId, deletedAt: null } });
    if (!s) throw new NotFoundError("Session", sessionId);
    return toView(s);
  }

  /** Soft-deletes the session and cancels its active runs (as `EngineClient.cancel` does) in the same transaction. */
  async deleteSession(teamId: string, sessionId: string): Promise<void> {
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    await withTransaction(this.o.pool, async (c) => {
      const res = await c.query("UPDATE sessions SET deleted_at = now(), updated_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL", [sessionId, teamId]);
      if (res.rowCount !== 1) throw new NotFoundError("Session", sessionId);
      // The same edge as a cancel: every run it ends gets its run_cancelled event.
      await cancelSessionRuns(c, sessionId);
    }).catch((err: unknown) => {
      if (pgCode(err) === PgCode.invalidTextRepresentation) throw new NotFoundError("Session", sessionId);
      throw err;
    });
  }
}

function actingTeam(by: string | Principal): string {
  if (typeof by === "string") return by;
  requireRole(by, "member");
  return by.teamId;
}

/**
 * Plain header values of configs written before headerSecrets are never returned by the API, so
 * an edit cannot repeat them: an entry with the same name and url keeps them (until
 * agent/mcp-headers.ts moves them into secrets).
 */
function keepLegacyHeaders<T extends { name: string; url: string }>(next: T[], stored: GuardedConfig["mcpServers"]): T[] {
  return next.map((s) => {
    const old = stored.find((o) => o.name === s.name && o.url === s.url && o.headers && Object.keys(o.headers).length > 0);
    return old ? { ...s, headers: old.headers } : s;
  });
}

function toView(s: { id: string; teamId: string; agentId: string; agentVersion: number; status: string; lastSeq: bigint; title: string | null; createdAt: Date }): SessionView {
  return { id: s.id, teamId: s.teamId, agentId: s.agentId, agentVersion: s.agentVersion, status: s.status, lastSeq: s.lastSeq, title: s.title, createdAt: s.createdAt };
}
