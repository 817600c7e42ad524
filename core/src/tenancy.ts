// Teams, agents (versioned) and sessions. Every call takes the team it acts for; rows of other
// teams are invisible (NotFound), never Forbidden, so ids cannot be probed across teams.
import { z } from "zod";
import { ConflictError, NotFoundError, ValidationError } from "./errors.js";
import { pgCode, PgCode, withTransaction, type Pool } from "./db/pool.js";
import type { PrismaClient } from "./db/prisma.js";
import { isUuid } from "./engine/client.js";
import { sandboxPolicy, sandboxResources } from "./sandbox/policy.js";
import { AgentConfig } from "./contract/api-schemas.js";
import { requireRole, type Principal } from "./access/principal.js";
import { guardAgentConfig, type GuardedConfig } from "./agent/agent-guard.js";

const strictSandboxPolicy = sandboxPolicy.extend({ resources: sandboxResources.strict().prefault({}) }).strict();

/**
 * The API's agent configuration (contract/api-schemas.ts), plus the sandbox policy checked now,
 * strictly, against the policy schema (stored as given, so later changes to the defaults apply):
 * a typo or a bad egress entry is a 422 at save, not a surprise at tool time.
 */
export const AgentConfigSchema = AgentConfig.extend({
  sandboxPolicy: AgentConfig.shape.sandboxPolicy.superRefine((v, ctx) => {
    const r = strictSandboxPolicy.safeParse(v);
    if (!r.success) for (const i of r.error.issues) ctx.addIssue({ code: "custom", path: i.path as PropertyKey[], message: i.message });
  }),
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

  /** Soft-deletes the session and cancels its queued and running runs in the same transaction. */
  async deleteSession(teamId: string, sessionId: string): Promise<void> {
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    await withTransaction(this.o.pool, async (c) => {
      const res = await c.query("UPDATE sessions SET deleted_at = now(), updated_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL", [sessionId, teamId]);
      if (res.rowCount !== 1) throw new NotFoundError("Session", sessionId);
      await c.query(`UPDATE runs SET status = 'cancelled', finished_at = now(), updated_at = now() WHERE session_id = $1 AND status IN ('queued', 'waiting_approval')`, [sessionId]);
      await c.query(`UPDATE runs SET cancel_requested = true, updated_at = now() WHERE session_id = $1 AND status = 'running'`, [sessionId]);
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
