import { ForbiddenError } from "../errors.js";

export const ROLES = ["viewer", "member", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting, for which team, with which role: the output of authentication. */
export type Principal = {
  teamId: string;
  role: Role;
  /** For the audit log: "user:<email>" or "api_key:<prefix>". */
  actor: string;
  userId: string | null;
  apiKeyId: string | null;
};

/** viewer < member < admin. Throws Forbidden (403) when the principal's role is too low. */
export function requireRole(p: Principal, min: Role): void {
  if (ROLES.indexOf(p.role) < ROLES.indexOf(min)) throw new ForbiddenError(`this needs the ${min} role; you are ${p.role}`);
}
