// `keel teams …` and `keel platform-admins …`: the platform operator's commands. Two ways in, the
// same verbs and output: against the API with a platform key (KEEL_API_URL + KEEL_API_KEY: a key
// created with `platform: true` by a platform admin), or straight against DATABASE_URL (break-glass:
// no web process needed, no principal; audit rows name the actor "cli").
import { parseArgs } from "node:util";
import { createPool, KeelError, Platform, type TeamInfo } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { ApiClient, ApiError } from "@keel/core/contract/api-client";
import type { Role } from "@keel/core/contract/api-schemas";
import type { TeamsEnv } from "./env.js";

export const TEAMS_USAGE = `usage: keel teams <command> [options]

  list                                   every team (--json for JSON)
  create <slug> [--name NAME]            a new, empty team
  rename <slug> [--slug NEW] [--name N]  new slug and/or name
  suspend <slug> --reason TEXT           keys and logins answer 403 with the reason; queued runs wait
  resume <slug>
  delete <slug> --confirm <slug>         everything the team owns goes; its audit rows stay
  invite <slug> <email> [--role ROLE]    an invitation link (role admin by default)

usage: keel platform-admins list | grant <email> | revoke <email>

Against the API: KEEL_API_URL and KEEL_API_KEY (a platform key). Otherwise DATABASE_URL (break-glass).
`;

/** The operations, the same whichever way in. */
type Ops = {
  list(): Promise<TeamInfo[]>;
  create(slug: string, name?: string): Promise<TeamInfo>;
  rename(id: string, body: { slug?: string; name?: string }): Promise<TeamInfo>;
  suspend(id: string, reason: string): Promise<TeamInfo>;
  resume(id: string): Promise<TeamInfo>;
  delete(id: string, confirm: string): Promise<void>;
  invite(id: string, email: string, role: Role): Promise<{ token: string; email: string; role: string; expiresAt: Date | string }>;
  admins(): Promise<{ userId: string; email: string }[]>;
  grant(email: string): Promise<{ userId: string; email: string }>;
  revoke(userId: string): Promise<void>;
  close(): Promise<void>;
};

function viaApi(url: string, apiKey: string): Ops {
  const c = new ApiClient({ baseUrl: url, credentials: { apiKey } });
  const date = (t: { createdAt: string; suspendedAt: string | null }) =>
    ({ ...t, createdAt: new Date(t.createdAt), suspendedAt: t.suspendedAt ? new Date(t.suspendedAt) : null }) as TeamInfo;
  return {
    list: async () => (await c.call(api.platform.listTeams)).teams.map(date),
    create: async (slug, name) => date(await c.call(api.platform.createTeam, { body: { slug, ...(name ? { name } : {}) } })),
    rename: async (id, body) => date(await c.call(api.platform.renameTeam, { params: { id }, body })),
    suspend: async (id, reason) => date(await c.call(api.platform.suspendTeam, { params: { id }, body: { reason } })),
    resume: async (id) => date(await c.call(api.platform.resumeTeam, { params: { id } })),
    delete: (id, confirm) => c.call(api.platform.deleteTeam, { params: { id }, body: { confirm } }),
    invite: (id, email, role) => c.call(api.platform.inviteToTeam, { params: { id }, body: { email, role } }),
    admins: async () => (await c.call(api.platform.listAdmins)).admins,
    grant: (email) => c.call(api.platform.grantAdmin, { body: { email } }),
    revoke: (userId) => c.call(api.platform.revokeAdmin, { params: { userId } }),
    close: async () => {},
  };
}

function viaDatabase(databaseUrl: string): Ops {
  const pool = createPool(databaseUrl, { max: 2, applicationName: "keel-cli" });
  const p = new Platform({ pool });
  const by = "operator" as const;
  return {
    list: () => p.listTeams(by),
    create: (slug, name) => p.createTeam(by, { slug, ...(name ? { name } : {}) }),
    rename: (id, body) => p.renameTeam(by, id, body),
    suspend: (id, reason) => p.suspendTeam(by, id, reason),
    resume: (id) => p.resumeTeam(by, id),
    delete: (id, confirm) => p.deleteTeam(by, id, confirm),
    invite: (id, email, role) => p.invite(by, id, { email, role }),
    admins: () => p.listAdmins(by),
    grant: (email) => p.grantAdmin(by, email),
    revoke: (userId) => p.revokeAdmin(by, userId),
    close: () => pool.end(),
  };
}

class UsageError extends Error {}

export async function runTeams(group: "teams" | "platform-admins", argv: string[], env: TeamsEnv): Promise<void> {
  let ops: Ops | null = null;
  try {
    const { values: o, positionals: args } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        name: { type: "string" },
        slug: { type: "string" },
        reason: { type: "string" },
        confirm: { type: "string" },
        role: { type: "string", default: "admin" },
        json: { type: "boolean", default: false },
      },
    });
    if (env.KEEL_API_URL && env.KEEL_API_KEY) ops = viaApi(env.KEEL_API_URL, env.KEEL_API_KEY);
    else if (env.DATABASE_URL) ops = viaDatabase(env.DATABASE_URL);
    else throw new UsageError("set KEEL_API_URL and KEEL_API_KEY (a platform key), or DATABASE_URL (break-glass)");
    // Against the API the dashboard's address is known: the link is complete.
    const linkBase = env.KEEL_API_URL && env.KEEL_API_KEY ? env.KEEL_API_URL.replace(/\/+$/, "") : "<dashboard URL>";
    const out = await (group === "teams" ? teamsCommand(ops, args, o, linkBase) : adminsCommand(ops, args));
    process.stdout.write(o.json ? `${JSON.stringify(out.json, null, 2)}\n` : out.text);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    const detail = err instanceof KeelError || err instanceof ApiError ? ` (${err.code})` : "";
    process.stderr.write(`keel ${group}: ${(err as Error).message}${detail}\n${usage ? `\n${TEAMS_USAGE}` : ""}`);
    process.exitCode = usage ? 2 : 1;
  } finally {
    await ops?.close();
  }
}

type Out = { text: string; json: unknown };
const row = (t: TeamInfo) =>
  `${t.slug.padEnd(24)} ${t.name.slice(0, 30).padEnd(30)} ${String(t.members).padStart(7)}  ${t.suspendedAt ? `suspended: ${t.suspendedReason ?? ""}` : "active"}\n`;
const one = (t: TeamInfo, what: string): Out => ({ text: `${what} ${t.slug} (${t.id})\n`, json: t });

async function teamsCommand(
  ops: Ops,
  args: string[],
  o: { name?: string; slug?: string; reason?: string; confirm?: string; role?: string },
  linkBase: string,
): Promise<Out> {
  const [cmd, slug, email] = args;
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new UsageError(`keel teams ${cmd} needs ${what}`);
    return v;
  };
  const id = async () => {
    const s = need(slug, "a team slug");
    const t = (await ops.list()).find((x) => x.slug === s);
    if (!t) throw new KeelError("not_found", 404, `no team with slug ${s}`);
    return t.id;
  };
  switch (cmd) {
    case "list": {
      const teams = await ops.list();
      return { text: `${"SLUG".padEnd(24)} ${"NAME".padEnd(30)} MEMBERS  STATUS\n${teams.map(row).join("")}`, json: teams };
    }
    case "create":
      return one(await ops.create(need(slug, "a slug"), o.name), "created");
    case "rename":
      if (!o.slug && !o.name) throw new UsageError("keel teams rename needs --slug and/or --name");
      return one(await ops.rename(await id(), { ...(o.slug ? { slug: o.slug } : {}), ...(o.name ? { name: o.name } : {}) }), "renamed");
    case "suspend":
      return one(await ops.suspend(await id(), need(o.reason, "--reason")), "suspended");
    case "resume":
      return one(await ops.resume(await id()), "resumed");
    case "delete": {
      const teamId = await id();
      await ops.delete(teamId, need(o.confirm, "--confirm <slug> (type the slug again)"));
      return { text: `deleted ${slug} (${teamId})\n`, json: { deleted: teamId } };
    }
    case "invite": {
      const inv = await ops.invite(await id(), need(email, "an email"), (o.role ?? "admin") as Role);
      return {
        text: `invited ${inv.email} as ${inv.role} (expires ${new Date(inv.expiresAt).toISOString()})\nlink: ${linkBase}/invite#${inv.token}\n`,
        json: inv,
      };
    }
    default:
      throw new UsageError(cmd ? `unknown command "${cmd}"` : "which command?");
  }
}

async function adminsCommand(ops: Ops, args: string[]): Promise<Out> {
  const [cmd, email] = args;
  switch (cmd) {
    case "list": {
      const admins = await ops.admins();
      return { text: admins.map((a) => `${a.email}\n`).join(""), json: admins };
    }
    case "grant": {
      if (!email) throw new UsageError("keel platform-admins grant needs an email");
      const a = await ops.grant(email);
      return { text: `${a.email} is a platform admin\n`, json: a };
    }
    case "revoke": {
      if (!email) throw new UsageError("keel platform-admins revoke needs an email");
      const a = (await ops.admins()).find((x) => x.email === email.trim().toLowerCase());
      if (!a) throw new KeelError("not_found", 404, `${email} is not a platform admin`);
      await ops.revoke(a.userId);
      return { text: `${a.email} is no longer a platform admin\n`, json: { revoked: a.userId } };
    }
    default:
      throw new UsageError(cmd ? `unknown command "${cmd}"` : "which command?");
  }
}
