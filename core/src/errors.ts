// Every error Keel returns to a caller is one of these. Each carries a stable `code` and the HTTP
// status the edge answers with; `toErrorBody` is the one place that turns them into JSON.

export type ErrorDetails = Record<string, unknown>;

export class KeelError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetails;
  constructor(code: string, status: number, message: string, details: ErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export class NotFoundError extends KeelError {
  constructor(what: string, id: string) {
    super("not_found", 404, `${what} not found`, { [`${what.toLowerCase()}Id`]: id });
  }
}

export class ValidationError extends KeelError {
  constructor(message: string, details: ErrorDetails = {}) {
    super("validation_failed", 422, message, details);
  }
}

export class ConflictError extends KeelError {
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(code, 409, message, details);
  }
}

/** A worker's claim on a run is gone (another worker took it over): stop, do not retry. */
export class ClaimLostError extends KeelError {
  constructor(runId: string, epoch: bigint) {
    super("claim_lost", 409, "the run was claimed by another worker", { runId, epoch: epoch.toString() });
  }
}

export class UnauthorizedError extends KeelError {
  constructor(message = "authentication required") {
    super("unauthorized", 401, message);
  }
}

export class ForbiddenError extends KeelError {
  constructor(message = "not allowed", details: ErrorDetails = {}) {
    super("forbidden", 403, message, details);
  }
}

export class PlatformAdminRequiredError extends KeelError {
  constructor() {
    super("platform_admin_required", 403, "this needs a platform admin (a team's admin role is not enough)");
  }
}

/** A suspended team's keys and logins: 403 with the reason the platform admin gave. */
export class TeamSuspendedError extends KeelError {
  constructor(team: { slug: string; reason: string | null; suspendedAt: Date | null }) {
    super("team_suspended", 403, `team ${team.slug} is suspended: ${team.reason ?? "no reason given"}`, {
      team: team.slug,
      reason: team.reason,
      suspendedAt: team.suspendedAt,
    });
  }
}

export class UnavailableError extends KeelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", 503, message, {}, options);
  }
}

export type ErrorBody = { error: { code: string; message: string; details: ErrorDetails } };

/** Known errors keep their code and message; anything else becomes a generic 500. */
export function toErrorBody(err: unknown): { status: number; body: ErrorBody; known: boolean } {
  if (err instanceof KeelError) {
    return { status: err.status, body: { error: { code: err.code, message: err.message, details: err.details } }, known: true };
  }
  return { status: 500, body: { error: { code: "internal", message: "internal error", details: {} } }, known: false };
}

export function assertNever(x: never, what = "value"): never {
  throw new Error(`unexpected ${what}: ${String(x)}`);
}

export class PayloadTooLargeError extends KeelError {
  constructor(sizeBytes: number, maxBytes: number) {
    super("payload_too_large", 413, `payload is ${sizeBytes} bytes; the limit is ${maxBytes}`, { sizeBytes, maxBytes });
  }
}

/** A caller waited for a run longer than its limit (or went away); the run goes on regardless. */
export class RunWaitTimeoutError extends KeelError {
  constructor(sessionId: string, runId: string) {
    super("timeout", 504, "the run did not finish in time; read the session's events for the answer", { sessionId, runId });
  }
}
