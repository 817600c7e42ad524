import { ForbiddenError } from "../errors.js";

import { ROLES, type Role } from "../contract/vocabulary.js";
export { ROLES, type Role } from "../contract/vocabulary.js";

/** Who is acting, for which team, with which role: the output of authentication. */
export type Principal = {
  teamId: string;
  role: Role;
  /** For the audit log: "user:<email>" or "api_key:<prefix>". */
  actor: string;
  userId: string | null;
  apiKeyId: string | null;
  /** A platform operator (users.platform_admin; for a key: made with `platform: true` by one). Unset: false. */
  platformAdmin?: boolean;
};

/** viewer < member < admin. Throws Forbidden (403) when the principal's role is too low. */
export function requireRole(p: Principal, min: Role): void {
  if (ROLES.indexOf(p.role) < ROLES.indexOf(min)) throw new ForbiddenError(`this needs the ${min} role; you are ${p.role}`);
}

/**
 * Who a core write acts for: a Principal (an API caller: the service checks its role and writes
 * the audit row in the change's transaction), or a bare team id (the operator's own code:
 * seeding, tests, the CLI, a worker relaying a request the web already audited; no audit row).
 */
export type Acting = string | Principal;

/** The team `by` acts for; a principal below `min` is refused (403). */
export function actingTeam(by: Acting, min: Role): string {
  if (typeof by === "string") return by;
  requireRole(by, min);
  return by.teamId;
}

/** The principal to audit, or null for the operator's own calls. */
export function auditedBy(by: Acting): Principal | null {
  return typeof by === "string" ? null : by;
}
