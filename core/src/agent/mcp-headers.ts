// Moves plain MCP header values out of agent configs (written before headerSecrets existed) into
// encrypted team secrets, and rewrites every version that held them to name the secret instead.
// Run by the web process at start-up, which holds KEEL_SECRETS_KEY; a SQL migration cannot do it
// (it has no key, and must not copy credentials anywhere readable). Safe to run again and
// concurrently: each pass finds what is left, a value already moved reuses its secret, and the
// rows are rewritten in one transaction under an advisory lock.
import { createHash } from "node:crypto";
import { withTransaction, type Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { Secrets } from "../secrets.js";
import { parseEgressEntry } from "../sandbox/egress.js";

type Row = { agent_id: string; version: number; team_id: string; mcp_servers: Record<string, unknown>[] };

const LOCK_KEY = 0x6b65656c0d; // "keel" + issue 13

/** The secret name for one header of one server: MCP_<SERVER>_<HEADER>, UPPER_SNAKE_CASE. */
export function headerSecretName(server: string, header: string, n = 1): string {
  const base = `MCP_${server}_${header}`
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, "_")
    .slice(0, 120);
  return n === 1 ? base : `${base}_${n}`;
}

/** How many header values were moved (0 when none were left). Needs the secrets key when any are left. */
export async function moveMcpHeadersToSecrets(o: { pool: Pool; secrets: Secrets; logger: Logger }): Promise<number> {
  const { rows } = await o.pool.query<Row>(
    `SELECT v.agent_id, v.version, a.team_id, v.mcp_servers FROM agent_versions v JOIN agents a ON a.id = v.agent_id
     WHERE jsonb_typeof(v.mcp_servers) = 'array' AND jsonb_path_exists(v.mcp_servers, '$[*].headers')`,
  );
  if (rows.length === 0) return 0;
  // team → value digest → secret name, so one value used by many versions becomes one secret.
  const chosen = new Map<string, string>();
  const taken = new Map<string, Set<string>>();
  let moved = 0;
  const updates: { agentId: string; version: number; servers: Record<string, unknown>[] }[] = [];
  for (const r of rows) {
    if (!taken.has(r.team_id)) taken.set(r.team_id, new Set(await o.secrets.listNames(r.team_id)));
    const servers: Record<string, unknown>[] = [];
    for (const s of r.mcp_servers) {
      const headers = s.headers as Record<string, string> | undefined;
      if (!headers || typeof headers !== "object") {
        servers.push(s);
        continue;
      }
      const headerSecrets: Record<string, string> = { ...((s.headerSecrets as Record<string, string> | undefined) ?? {}) };
      for (const [header, value] of Object.entries(headers)) {
        if (typeof value !== "string" || value === "") continue; // nothing to keep (a secret is never empty)
        const digest = createHash("sha256")
          .update(`${r.team_id}\n${String(s.name)}\n${header}\n${value}`)
          .digest("base64");
        let name = chosen.get(digest);
        if (!name) {
          name = await pickName(o.secrets, r.team_id, s, header, value, taken.get(r.team_id)!);
          chosen.set(digest, name);
        }
        headerSecrets[header] = name;
        moved++;
      }
      const { headers: _plain, ...rest } = s;
      servers.push({ ...rest, headerSecrets });
    }
    updates.push({ agentId: r.agent_id, version: r.version, servers });
  }
  await withTransaction(o.pool, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock($1)", [LOCK_KEY]);
    for (const u of updates) {
      // Only rows still holding plain headers: a concurrent pass may have rewritten them already.
      await c.query(
        `UPDATE agent_versions SET mcp_servers = $3::jsonb WHERE agent_id = $1 AND version = $2 AND jsonb_path_exists(mcp_servers, '$[*].headers')`,
        [u.agentId, u.version, JSON.stringify(u.servers)],
      );
    }
  });
  o.logger.info({ headers: moved, versions: updates.length }, "plain MCP headers moved into team secrets");
  return moved;
}

/** A free name, or the one already holding this exact value (an earlier, interrupted pass). */
async function pickName(secrets: Secrets, teamId: string, server: Record<string, unknown>, header: string, value: string, taken: Set<string>): Promise<string> {
  const url = String(server.url);
  for (let n = 1; ; n++) {
    const name = headerSecretName(String(server.name), header, n);
    if (taken.has(name)) {
      const existing = await secrets.resolve(teamId, [name], url).then(
        (v) => v[name],
        () => undefined,
      );
      if (existing === value) return name;
      continue;
    }
    // Bound to the server's host: the value was only ever sent there.
    await secrets.putForTeam(teamId, name, value, boundHost(url));
    taken.add(name);
    return name;
  }
}

/** The URL's host (with its port when it names one) as an allowedHosts entry; none if the grammar refuses it. */
function boundHost(url: string): string[] {
  try {
    const host = new URL(url).host;
    return parseEgressEntry(host) instanceof Error ? [] : [host];
  } catch {
    return [];
  }
}
