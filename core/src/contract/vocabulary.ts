// The fixed word lists the API, the UIs and the server share: roles, run states, busy policies,
// sandbox states. Here, at the bottom of the contract, so the browser-safe entry points need no
// server module; the modules that give them meaning (access/, engine/, sandbox/) re-export them.

export const ROLES = ["viewer", "member", "admin"] as const;
export type Role = (typeof ROLES)[number];

export const RUN_STATUSES = ["queued", "running", "waiting_approval", "succeeded", "failed", "cancelled", "interrupted"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** What happens to a message posted while the session has an active run. */
export const BUSY_POLICIES = ["enqueue", "reject", "interrupt"] as const;
export type BusyPolicy = (typeof BUSY_POLICIES)[number];

/** A sandbox's lifecycle states (the diagram is in sandbox/driver.ts). */
export const SANDBOX_STATES = ["requested", "provisioning", "ready", "suspended", "failed", "terminated"] as const;
export type SandboxState = (typeof SANDBOX_STATES)[number];

/** A team's slug: lowercase letters, digits and '-', starting with a letter or digit, up to 64. */
export const TEAM_SLUG = /^[a-z0-9][a-z0-9-]{0,63}$/;
