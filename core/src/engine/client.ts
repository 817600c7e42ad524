// What clients (dashboard, REST, OpenAI endpoint) do to sessions through the engine: post a
// message, cancel, read the log. Every call is scoped by team: another team's session is
// answered exactly like a missing one.
import { ConflictError, NotFoundError, ValidationError } from "../errors.js";
import { withTransaction, type Pool, type PoolClient, type Queryable } from "../db/pool.js";
import { appendEvent, encodeEvent, findEventByIdempotencyKey, readEvents, DEFAULT_MAX_EVENT_BYTES } from "./events.js";
import type { PayloadOf } from "../contract/events.js";
import { ACTIVE_STATUS_SQL } from "./fence.js";
import { cancelSessionRuns, enqueueRun, interruptParkedRun, INTERRUPTED_BY_MESSAGE, requestInterrupt } from "./lifecycle.js";
import { actingTeam, type Acting, type Principal } from "../access/principal.js";
import { audited } from "../audit.js";
import { BUSY_POLICIES, EngineEventType, SESSION_HOLDING_RUN_STATUSES, type BusyPolicy, type RunRow, type RunStatus, type SessionEvent } from "./types.js";

export type PostMessageInput = {
  teamId: string;
  sessionId: string;
  /** The message as the model will see it: a string, or structured content parts. */
  content: PayloadOf<"user_message">["content"];
  /** A retried POST with the same key returns the first result and appends nothing. */
  idempotencyKey?: string;
  onBusy?: BusyPolicy;
  /** W3C trace context of the request posting it (already validated): a run this enqueues carries it to the worker's spans. */
  traceparent?: string;
};

export type PostMessageResult = {
  seq: bigint;
  runId: string;
  /** started: a new run was queued; queued: it waits behind the active run; interrupting: the active run stops at its next step. */
  disposition: "started" | "queued" | "interrupting";
  duplicate: boolean;
};

export type EngineClientOptions = { pool: Pool; maxEventBytes?: number; maxAttempts?: number };

type RunLite = { id: string; status: RunStatus };
const holdsSession = (r: RunLite) => (SESSION_HOLDING_RUN_STATUSES as readonly RunStatus[]).includes(r.status);

/** Client calls are database work only: a deadlock victim is run again rather than answered 500. */
const CLIENT_TX = { retries: 3 };

/** An idempotency key is 1 to 200 characters (or absent). */
export function checkIdempotencyKey(key: string | undefined): void {
  if (key !== undefined && (key.length === 0 || key.length > 200)) throw new ValidationError("idempotency key must be 1 to 200 characters");
}

export class EngineClient {
  private readonly maxEventBytes: number;
  private readonly maxAttempts: number;
  constructor(private readonly o: EngineClientOptions) {
    this.maxEventBytes = o.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.maxAttempts = o.maxAttempts ?? 5;
  }

  /**
   * Appends the user message and makes sure a run will handle it, in one transaction.
   * The session row lock (FOR UPDATE) serializes posts to one session, so the busy check and the
   * enqueue cannot interleave with another post.
   */
  async postMessage(input: PostMessageInput): Promise<PostMessageResult> {
    const onBusy = input.onBusy ?? "enqueue";
    if (!BUSY_POLICIES.includes(onBusy)) throw new ValidationError(`onBusy must be one of ${BUSY_POLICIES.join(", ")}`, { onBusy });
    checkIdempotencyKey(input.idempotencyKey);
    if (input.content === undefined || input.content === null || input.content === "") throw new ValidationError("message content is empty");
    const userMessage = encodeEvent(EngineEventType.userMessage, { role: "user", content: input.content }, this.maxEventBytes);

    return withTransaction(
      this.o.pool,
      async (c) => {
        await lockSession(c, input.teamId, input.sessionId);
        if (input.idempotencyKey) {
          const prior = await findEventByIdempotencyKey(c, input.sessionId, input.idempotencyKey);
          if (prior) return { seq: prior.seq, runId: prior.runId ?? "", disposition: "queued", duplicate: true };
        }
        const { rows: runs } = await c.query<RunLite>(
          `SELECT id, status FROM runs WHERE session_id = $1 AND status IN ${ACTIVE_STATUS_SQL} ORDER BY created_at, id`,
          [input.sessionId],
        );
        // A run waiting for approval holds the session as much as a running one does.
        const running = runs.find(holdsSession);
        const queued = runs.find((r) => r.status === "queued");
        if (running && onBusy === "reject") {
          throw new ConflictError("session_busy", "the session is running; retry later or post with onBusy=enqueue or interrupt", { runId: running.id });
        }
        // A queued run has not read the log yet (or will re-read it on resume): it will see this message too.
        const runId =
          queued?.id ??
          (await enqueueRun(c, { teamId: input.teamId, sessionId: input.sessionId, maxAttempts: this.maxAttempts, traceparent: input.traceparent }));
        const seq = await appendEvent(c, {
          sessionId: input.sessionId,
          ...userMessage,
          runId,
          idempotencyKey: input.idempotencyKey ?? null,
        });
        if (running && onBusy === "interrupt") {
          if (running.status === "waiting_approval") await interruptParkedRun(c, { id: running.id, sessionId: input.sessionId }, INTERRUPTED_BY_MESSAGE);
          else await requestInterrupt(c, running.id);
        }
        const disposition = !running ? "started" : onBusy === "interrupt" ? "interrupting" : "queued";
        return { seq, runId, disposition, duplicate: false };
      },
      CLIENT_TX,
    );
  }

  /**
   * Cancels the session's queued runs at once, and asks its running run to stop at its next
   * step boundary (the worker records run_cancelled). Returns the runs affected. `by`: a
   * principal (role checked, `session.cancel` audited in the same transaction) or, for the
   * operator's own calls, `teamId`.
   */
  async cancel(input: { sessionId: string } & ({ by: Principal } | { teamId: string })): Promise<{ cancelled: string[]; stopping: string[] }> {
    const by: Acting = "by" in input ? input.by : input.teamId;
    const teamId = actingTeam(by, "member");
    return audited(
      this.o.pool,
      by,
      async (c) => {
        await lockSession(c, teamId, input.sessionId);
        return cancelSessionRuns(c, input.sessionId);
      },
      (r) => ({ action: "session.cancel", target: input.sessionId, details: r }),
      CLIENT_TX,
    );
  }

  async readEvents(input: { teamId: string; sessionId: string; afterSeq?: bigint; limit?: number }): Promise<SessionEvent[]> {
    const limit = input.limit ?? 500;
    if (!Number.isInteger(limit) || limit < 1 || limit > 5000) throw new ValidationError("limit must be between 1 and 5000");
    await assertSessionVisible(this.o.pool, input.teamId, input.sessionId);
    return readEvents(this.o.pool, input.sessionId, input.afterSeq ?? 0n, limit);
  }

  async getRun(input: { teamId: string; runId: string }): Promise<RunRow> {
    if (!isUuid(input.runId)) throw new NotFoundError("Run", input.runId);
    const { rows } = await this.o.pool.query(
      `SELECT id, session_id, team_id, status, attempt, max_attempts, takeovers, epoch, lease_owner, last_error,
              cancel_requested, interrupt_requested, prompt_tokens, completion_tokens, created_at, started_at, finished_at,
              CASE WHEN status = 'queued' AND attempt > 0 THEN available_at END AS next_attempt_at
       FROM runs WHERE id = $1 AND team_id = $2`,
      [input.runId, input.teamId],
    );
    const r = rows[0];
    if (!r) throw new NotFoundError("Run", input.runId);
    return {
      id: r.id,
      sessionId: r.session_id,
      teamId: r.team_id,
      status: r.status,
      attempt: r.attempt,
      maxAttempts: r.max_attempts,
      takeovers: r.takeovers,
      epoch: r.epoch,
      leaseOwner: r.lease_owner,
      lastError: r.last_error,
      cancelRequested: r.cancel_requested,
      interruptRequested: r.interrupt_requested,
      usage: { promptTokens: r.prompt_tokens, completionTokens: r.completion_tokens },
      createdAt: r.created_at,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      nextAttemptAt: r.next_attempt_at,
    };
  }
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

/** Locks a live session of this team, or answers NotFound (missing, deleted and foreign alike). */
async function lockSession(c: PoolClient, teamId: string, sessionId: string): Promise<void> {
  if (!isUuid(sessionId) || !isUuid(teamId)) throw new NotFoundError("Session", sessionId);
  const { rows } = await c.query<{ status: string }>("SELECT status FROM sessions WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE", [
    sessionId,
    teamId,
  ]);
  if (!rows[0]) throw new NotFoundError("Session", sessionId);
  if (rows[0].status === "archived") throw new ConflictError("session_archived", "the session is archived; unarchive it to post", { sessionId });
}

export async function assertSessionVisible(db: Queryable, teamId: string, sessionId: string): Promise<void> {
  if (!isUuid(sessionId) || !isUuid(teamId)) throw new NotFoundError("Session", sessionId);
  const { rows } = await db.query("SELECT 1 FROM sessions WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL", [sessionId, teamId]);
  if (!rows[0]) throw new NotFoundError("Session", sessionId);
}
