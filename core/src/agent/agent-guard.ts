// Who may set which part of an agent. The fields that decide where a team's conversations and
// secrets go are admin-only: provider.baseUrl and provider.apiKeySecret (a member could point an
// agent at their own server and receive its key and every later conversation), the sandbox's
// secrets and egress (a member could expose a secret to a sandbox that can send it anywhere), and
// MCP servers (URLs, credential headers, allowed tools). Members edit everything else; an agent's
// protected fields that an admin set are kept on a member's edit (omitted = unchanged), and a
// member's edit that would change one is refused (403) naming the fields.
import { ForbiddenError } from "../errors.js";
import type { Principal } from "../access/principal.js";
import { sandboxPolicy } from "../sandbox/policy.js";

/** The stored shape of the fields this module compares (agent_versions columns). */
export type GuardedConfig = {
  provider: { baseUrl?: string; apiKeySecret?: string } & Record<string, unknown>;
  sandboxPolicy: unknown;
  mcpServers: { name: string; url: string; allowTools?: string[]; headerSecrets?: Record<string, string>; headers?: Record<string, string> }[];
};

export const PROTECTED_AGENT_FIELDS = ["provider.baseUrl", "provider.apiKeySecret", "sandboxPolicy.secrets", "sandboxPolicy.egress", "mcpServers"] as const;
type Field = (typeof PROTECTED_AGENT_FIELDS)[number];

/** What the input says about a protected field; undefined when it does not mention it. */
function given(input: Partial<Record<string, unknown>>, field: Field): unknown {
  const [top, sub] = field.split(".") as [string, string | undefined];
  const v = input[top];
  if (sub === undefined) return v;
  return v && typeof v === "object" ? (v as Record<string, unknown>)[sub] : undefined;
}

/** A comparable form of a stored or given value of a field (defaults applied, order-insensitive where order means nothing). */
function canonical(cfg: Partial<GuardedConfig>, field: Field): string {
  switch (field) {
    case "provider.baseUrl":
      return JSON.stringify(cfg.provider?.baseUrl ?? null);
    case "provider.apiKeySecret":
      return JSON.stringify(cfg.provider?.apiKeySecret ?? null);
    case "sandboxPolicy.secrets":
    case "sandboxPolicy.egress": {
      const p = sandboxPolicy.safeParse(cfg.sandboxPolicy ?? {});
      if (!p.success) return JSON.stringify(cfg.sandboxPolicy ?? null);
      return field === "sandboxPolicy.secrets" ? JSON.stringify([...p.data.secrets].sort()) : JSON.stringify(p.data.egress);
    }
    case "mcpServers":
      return JSON.stringify(
        (cfg.mcpServers ?? []).map((s) => ({
          name: s.name,
          url: s.url,
          allowTools: [...(s.allowTools ?? [])].sort(),
          headerSecrets: Object.entries(s.headerSecrets ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        })),
      );
    default: {
      const never: never = field;
      throw new Error(`unknown field ${String(never)}`);
    }
  }
}

/**
 * The configuration to store for `p`'s create (current undefined) or edit of an agent. Admins
 * store what they give. For a member, a protected field left out keeps its current value (none on
 * create); one given must equal it, else Forbidden naming every such field.
 */
export function guardAgentConfig<T extends GuardedConfig>(
  p: Principal,
  input: Partial<Record<string, unknown>>,
  parsed: T,
  current: GuardedConfig | undefined,
): T {
  if (p.role === "admin") return parsed;
  const base: GuardedConfig = current ?? { provider: {}, sandboxPolicy: {}, mcpServers: [] };
  const changed = PROTECTED_AGENT_FIELDS.filter((f) => given(input, f) !== undefined && canonical(parsed, f) !== canonical(base, f));
  if (changed.length > 0) {
    throw new ForbiddenError(`only an admin may set ${changed.join(", ")}: they decide where the team's conversations and secrets are sent`, {
      fields: changed,
    });
  }
  // Carry the protected values over (whatever the member's input omitted or repeated).
  const policy = (parsed.sandboxPolicy ?? {}) as Record<string, unknown>;
  const basePolicy = (base.sandboxPolicy ?? {}) as Record<string, unknown>;
  const provider: Record<string, unknown> = { ...parsed.provider };
  for (const k of ["baseUrl", "apiKeySecret"] as const) {
    if (base.provider[k] === undefined) delete provider[k];
    else provider[k] = base.provider[k];
  }
  const sandbox: Record<string, unknown> = { ...policy };
  for (const k of ["secrets", "egress"] as const) {
    if (basePolicy[k] === undefined) delete sandbox[k];
    else sandbox[k] = basePolicy[k];
  }
  return { ...parsed, provider, sandboxPolicy: sandbox, mcpServers: base.mcpServers };
}
