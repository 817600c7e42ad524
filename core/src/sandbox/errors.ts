// Sandbox errors. Messages are written for the model as much as for an operator: the agent loop
// turns a thrown error into a tool error the model reads, so say what was refused and why.
import { KeelError } from "../errors.js";

export class SandboxError extends KeelError {
  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(code, status, message, details, options);
  }
}

/** The runtime refused the call (bad path, stale epoch, bad arguments): status from the runtime. */
export class SandboxRequestError extends SandboxError {}

/** The sandbox cannot be started or reached. */
export class SandboxUnavailableError extends SandboxError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super("sandbox_unavailable", 503, message, details, options);
  }
}

/**
 * The team's sandboxes already use what the operator allows them (on Kubernetes the team
 * namespace's ResourceQuota). 429, not 503: the service is up and other teams' sandboxes start;
 * this team must release some of its own, or its limit be raised. Not retried by waiting.
 */
export class SandboxQuotaExceededError extends SandboxError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super("sandbox_quota_exceeded", 429, message, details, options);
  }
}
