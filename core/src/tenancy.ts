// Teams, agents (versioned) and sessions. Every call takes the team it acts for; rows of other
// teams are invisible (NotFound), never Forbidden, so ids cannot be probed across teams. A write
// called with a Principal checks its role and writes its audit row in the change's transaction.
import { z } from "zod";
import { ConflictError, NotFoundError, ValidationError } from "./errors.js";
import { pgCode, PgCode, type Pool } from "./db/pool.js";
import { isUuid } from "./engine/client.js";
import { cancelSessionRuns } from "./engine/lifecycle.js";
import { sandboxPolicy, sandboxResources } from "./sandbox/policy.js";
import { AgentConfig } from "./contract/api-schemas.js";
import { actingTeam, type Acting } from "./access/principal.js";
import { audited } from "./audit.js";
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

const NameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/, "letters, digits, space, . _ -; starting with a letter or digit");

function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new ValidationError("invalid input", { issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
  return r.data;
}

export type SessionView = {
  id: string;
  teamId: string;
  agentId: string;
  agentVersion: number;
  status: string;
  lastSeq: bigint;
  title: string | null;
  createdAt: Date;
};

/** jsonb parameters go in as JSON text: pg would send a JS array as a Postgres array literal. */
const json = (v: unknown) => JSON.stringify(v);

export class Tenancy {
  constructor(private readonly o: { pool: Pool }) {}

  async createTeam(input: { slug: string; name: string }): Promise<{ id: string; slug: string; name: string }> {
    const data = parse(
      z.object({
        slug: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[a-z0-9][a-z0-9-]*$/),
        name: z.string().min(1).max(200),
      }),
      input,
    );
    try {
      const { rows } = await this.o.pool.query<{ id: string; slug: string; name: string }>(
        "INSERT INTO teams (slug, name) VALUES ($1, $2) RETURNING id, slug, name",
        [data.slug, data.name],
      );
      return rows[0]!;
    } catch (err) {
      if (pgCode(err) === PgCode.uniqueViolation) throw new ConflictError("team_exists", "a team with this slug exists", { slug: data.slug });
      throw err;
    }
  }

  /**
   * `by`: the principal acting (its team and role; members may not set protected fields, see
   * agent/agent-guard.ts), or a team id for the operator's own calls (seeding, tests, the CLI).
   */
  async createAgent(by: Acting, input: { name: string } & AgentConfig): Promise<{ id: string; name: string; version: number }> {
    const teamId = actingTeam(by, "member");
    const name = parse(NameSchema, input.name);
    let cfg = parse(AgentConfigSchema, input);
    if (typeof by !== "string") cfg = guardAgentConfig(by, input, cfg, undefined);
    try {
      // One statement: the agent and its first version exist together or not at all.
      return await audited(
        this.o.pool,
        by,
        async (c) => {
          const { rows } = await c.query<{ id: string }>(
            `WITH a AS (INSERT INTO agents (team_id, name, current_version) VALUES ($1, $2, 1) RETURNING id)
           INSERT INTO agent_versions (agent_id, version, model, instructions, tools, sandbox_policy, provider, mcp_servers)
           SELECT a.id, 1, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb FROM a RETURNING agent_id AS id`,
            [teamId, name, cfg.model, cfg.instructions, json(cfg.tools), json(cfg.sandboxPolicy), json(cfg.provider), json(cfg.mcpServers)],
          );
          return { id: rows[0]!.id, name, version: 1 };
        },
        (a) => ({ action: "agent.create", target: a.id, details: { name: a.name } }),
      );
    } catch (err) {
      if (pgCode(err) === PgCode.uniqueViolation) throw new ConflictError("agent_exists", "an agent with this name exists in the team", { name });
      throw err;
    }
  }

  /** Writes a new version; sessions created earlier keep theirs. */
  async updateAgent(by: Acting, agentId: string, input: AgentConfig): Promise<{ id: string; version: number }> {
    const teamId = actingTeam(by, "member");
    let cfg = parse(AgentConfigSchema, input);
    if (!isUuid(agentId)) throw new NotFoundError("Agent", agentId);
    return audited(
      this.o.pool,
      by,
      async (c) => {
        // FOR UPDATE: two edits at once number their versions one after the other instead of the
        // second failing on the (agent_id, version) unique key.
        const agent = (
          await c.query<{ current_version: number }>("SELECT current_version FROM agents WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE", [
            agentId,
            teamId,
          ])
        ).rows[0];
        if (!agent) throw new NotFoundError("Agent", agentId);
        const current = (
          await c.query<{ provider: unknown; sandbox_policy: unknown; mcp_servers: unknown }>(
            "SELECT provider, sandbox_policy, mcp_servers FROM agent_versions WHERE agent_id = $1 AND version = $2",
            [agentId, agent.current_version],
          )
        ).rows[0];
        const stored = {
          provider: (current?.provider ?? {}) as GuardedConfig["provider"],
          sandboxPolicy: current?.sandbox_policy ?? {},
          mcpServers: (current?.mcp_servers ?? []) as GuardedConfig["mcpServers"],
        };
        if (typeof by !== "string") cfg = guardAgentConfig(by, input, cfg, stored);
        cfg = { ...cfg, mcpServers: keepLegacyHeaders(cfg.mcpServers, stored.mcpServers) };
        const version = agent.current_version + 1;
        await c.query(
          `INSERT INTO agent_versions (agent_id, version, model, instructions, tools, sandbox_policy, provider, mcp_servers) VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8::jsonb)`,
          [agentId, version, cfg.model, cfg.instructions, json(cfg.tools), json(cfg.sandboxPolicy), json(cfg.provider), json(cfg.mcpServers)],
        );
        await c.query("UPDATE agents SET current_version = $2, updated_at = now() WHERE id = $1", [agentId, version]);
        return { id: agentId, version };
      },
      (r) => ({ action: "agent.update", target: r.id, details: { version: r.version } }),
    );
  }

  /** Soft-deletes the agent (admins); its sessions keep the version they pinned. The name is freed for a new agent. */
  async deleteAgent(by: Acting, agentId: string): Promise<void> {
    const teamId = actingTeam(by, "admin");
    if (!isUuid(agentId)) throw new NotFoundError("Agent", agentId);
    await audited(
      this.o.pool,
      by,
      async (c) => {
        const res = await c.query(
          "UPDATE agents SET deleted_at = now(), name = name || ' (deleted ' || id || ')' WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL",
          [agentId, teamId],
        );
        if (res.rowCount !== 1) throw new NotFoundError("Agent", agentId);
      },
      () => ({ action: "agent.delete", target: agentId }),
    );
  }

  /** The REST API's POST /sessions and the OpenAI-compatible endpoint both create sessions here. */
  async createSession(by: Acting, input: { agentId: string; title?: string }): Promise<SessionView> {
    const teamId = actingTeam(by, "member");
    if (!isUuid(input.agentId)) throw new NotFoundError("Agent", input.agentId);
    return audited(
      this.o.pool,
      by,
      async (c) => {
        // One statement: the session pins the agent's version as it is when the row is written.
        const { rows } = await c.query<SessionRow>(
          `INSERT INTO sessions (team_id, agent_id, agent_version, title)
         SELECT team_id, id, current_version, $3 FROM agents WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL
         RETURNING ${SESSION_COLUMNS}`,
          [input.agentId, teamId, input.title ?? null],
        );
        if (!rows[0]) throw new NotFoundError("Agent", input.agentId);
        return toView(rows[0]);
      },
      (s) => ({ action: "session.create", target: s.id, details: { agentId: s.agentId } }),
    );
  }

  async getSession(teamId: string, sessionId: string): Promise<SessionView> {
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    const { rows } = await this.o.pool.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL`, [
      sessionId,
      teamId,
    ]);
    if (!rows[0]) throw new NotFoundError("Session", sessionId);
    return toView(rows[0]);
  }

  /** Soft-deletes the session and cancels its active runs (as `EngineClient.cancel` does) in the same transaction. */
  async deleteSession(by: Acting, sessionId: string): Promise<void> {
    const teamId = actingTeam(by, "member");
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    await audited(
      this.o.pool,
      by,
      async (c) => {
        const res = await c.query("UPDATE sessions SET deleted_at = now(), updated_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL", [
          sessionId,
          teamId,
        ]);
        if (res.rowCount !== 1) throw new NotFoundError("Session", sessionId);
        // The same edge as a cancel: every run it ends gets its run_cancelled event.
        await cancelSessionRuns(c, sessionId);
      },
      () => ({ action: "session.delete", target: sessionId }),
    ).catch((err: unknown) => {
      if (pgCode(err) === PgCode.invalidTextRepresentation) throw new NotFoundError("Session", sessionId);
      throw err;
    });
  }

  /** Archives (status `archived`: no posts, no sandbox) or unarchives (back to `idle`) a session. */
  async setArchived(by: Acting, sessionId: string, archived: boolean): Promise<void> {
    const teamId = actingTeam(by, "member");
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    await audited(
      this.o.pool,
      by,
      async (c) => {
        const res = await c.query("UPDATE sessions SET status = $3, updated_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL", [
          sessionId,
          teamId,
          archived ? "archived" : "idle",
        ]);
        if (res.rowCount !== 1) throw new NotFoundError("Session", sessionId);
      },
      () => ({ action: archived ? "session.archive" : "session.unarchive", target: sessionId }),
    );
  }
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

const SESSION_COLUMNS = "id, team_id, agent_id, agent_version, status, last_seq, title, created_at";
type SessionRow = {
  id: string;
  team_id: string;
  agent_id: string;
  agent_version: number;
  status: string;
  last_seq: bigint;
  title: string | null;
  created_at: Date;
};

function toView(s: SessionRow): SessionView {
  return {
    id: s.id,
    teamId: s.team_id,
    agentId: s.agent_id,
    agentVersion: s.agent_version,
    status: s.status,
    lastSeq: s.last_seq,
    title: s.title,
    createdAt: s.created_at,
  };
}
