// The session log: append (gapless seq) and read. One rule for seqs: an append bumps
// sessions.last_seq and inserts the event in the same statement, so the row lock on the session
// serializes appends and a rolled-back append leaves no gap.
import { PayloadTooLargeError, ValidationError } from "../errors.js";
import type { Queryable } from "../db/pool.js";
import { FENCE } from "./fence.js";
import { eventSchemas, isEventType, type EventType, type PayloadOf } from "../contract/events.js";
import type { NewEvent, SessionEvent } from "./types.js";

export const DEFAULT_MAX_EVENT_BYTES = 1024 * 1024;

type EventRow = { session_id: string; seq: bigint; type: string; payload: string; run_id: string | null; created_at: Date };

const EVENT_COLUMNS = "session_id, seq, type, payload::text AS payload, run_id, created_at";

function toEvent(r: EventRow): SessionEvent {
  return { sessionId: r.session_id, seq: r.seq, type: r.type, payloadText: r.payload, runId: r.run_id, createdAt: r.created_at };
}

declare const encoded: unique symbol;
/** Payload text checked against the contract (contract/events.ts): the only text the append functions store. */
export type EncodedPayload = string & { readonly [encoded]: true };
/** A typed event ready to append: spread it into appendEvent / appendEventFenced / finishRun's closing event. */
export type EncodedEvent = { type: EventType; payloadText: EncodedPayload };

/**
 * Serializes a typed event's payload and checks it against the contract; the size limit protects
 * the log and every reader. The schema check is a backstop (writers are typed): a payload that
 * does not match would be shown as invalid by every reader, so it is refused here instead.
 */
export function encodeEvent<T extends EventType>(type: T, payload: PayloadOf<T>, maxBytes = DEFAULT_MAX_EVENT_BYTES): EncodedEvent {
  const text = JSON.stringify(payload ?? null) as string | undefined;
  if (text === undefined) throw new ValidationError("event payload cannot be serialized as JSON", { type });
  return { type, payloadText: checkPayload(type, payload, text, maxBytes) };
}

/** Like encodeEvent for a payload that must be stored byte for byte (a provider's assistant item as it arrived). */
export function encodeEventText<T extends EventType>(type: T, text: string, maxBytes = DEFAULT_MAX_EVENT_BYTES): EncodedEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new ValidationError("event payload is not valid JSON", { type });
  }
  return { type, payloadText: checkPayload(type, payload, text, maxBytes) };
}

/** Accepts a typed event of the step contract (payload or verbatim text) and encodes it. */
export function encodeNewEvent(e: NewEvent, maxBytes: number): EncodedEvent {
  return "payloadText" in e && e.payloadText !== undefined
    ? encodeEventText(e.type, e.payloadText, maxBytes)
    : encodeEvent(e.type, (e as { payload: PayloadOf<EventType> }).payload, maxBytes);
}

function checkPayload(type: string, payload: unknown, text: string, maxBytes: number): EncodedPayload {
  if (!type || type.length > 100) throw new ValidationError("event type must be 1 to 100 characters");
  // Postgres json rejects \u0000; say so here rather than as a driver error.
  if (text.includes("\\u0000")) throw new ValidationError("event payload contains a NUL character (\\u0000), which Postgres cannot store");
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) throw new PayloadTooLargeError(bytes, maxBytes);
  // Types outside the contract are the engine tests' synthetic steps: stored as given.
  if (isEventType(type)) {
    const r = eventSchemas[type].safeParse(payload);
    if (!r.success)
      throw new ValidationError(`the ${type} payload does not match the event contract`, {
        type,
        issues: r.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`),
      });
  }
  return text as EncodedPayload;
}

/** Appends on behalf of a client (no run fence). The caller holds the session row lock or not: the UPDATE takes it. */
export async function appendEvent(
  db: Queryable,
  a: EncodedEvent & { sessionId: string; runId?: string | null; idempotencyKey?: string | null },
): Promise<bigint> {
  const { rows } = await db.query<{ seq: bigint }>(
    `WITH s AS (UPDATE sessions SET last_seq = last_seq + 1, updated_at = now() WHERE id = $1 RETURNING id, last_seq)
     INSERT INTO session_events (session_id, seq, type, payload, run_id, idempotency_key)
     SELECT id, last_seq, $2, $3::json, $4, $5 FROM s RETURNING seq`,
    [a.sessionId, a.type, a.payloadText, a.runId ?? null, a.idempotencyKey ?? null],
  );
  if (!rows[0]) throw new Error(`session ${a.sessionId} vanished during append`);
  return rows[0].seq;
}

/**
 * Appends on behalf of a worker: only if the worker still holds the run at this epoch.
 * FOR SHARE on the run row makes the fence and the append one atomic step against a concurrent
 * takeover (which UPDATEs that row): either the takeover waits for this append, or the append
 * sees the new epoch and writes nothing. Returns null when the claim is lost.
 *
 * Lock order (LOCK_ORDER in fence.ts): the session row first, then the run. `s0` runs before the
 * run's FOR SHARE because the run's filter reads it. Locking the run first deadlocked against a
 * cancel (session, then runs FOR UPDATE) and answered 500 (issue 13, item 2).
 */
export async function appendEventFenced(db: Queryable, a: EncodedEvent & { runId: string; epoch: bigint; workerId: string }): Promise<bigint | null> {
  const { rows } = await db.query<{ seq: bigint }>(
    `WITH s0 AS (SELECT id FROM sessions WHERE id = (SELECT session_id FROM runs WHERE id = $1) FOR NO KEY UPDATE),
          r AS (SELECT session_id FROM runs WHERE ${FENCE} AND session_id = (SELECT id FROM s0) FOR SHARE),
          s AS (UPDATE sessions SET last_seq = last_seq + 1, updated_at = now() WHERE id = (SELECT session_id FROM r) RETURNING id, last_seq)
     INSERT INTO session_events (session_id, seq, type, payload, run_id)
     SELECT id, last_seq, $4, $5::json, $1 FROM s RETURNING seq`,
    [a.runId, a.epoch, a.workerId, a.type, a.payloadText],
  );
  return rows[0]?.seq ?? null;
}

export async function readEvents(db: Queryable, sessionId: string, afterSeq: bigint, limit: number): Promise<SessionEvent[]> {
  const { rows } = await db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM session_events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [
    sessionId,
    afterSeq,
    limit,
  ]);
  return rows.map(toEvent);
}

export async function readAllEvents(db: Queryable, sessionId: string): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  for (;;) {
    const page = await readEvents(db, sessionId, out.at(-1)?.seq ?? 0n, 1000);
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

export async function findEventByIdempotencyKey(db: Queryable, sessionId: string, key: string): Promise<SessionEvent | null> {
  const { rows } = await db.query<EventRow>(`SELECT ${EVENT_COLUMNS} FROM session_events WHERE session_id = $1 AND idempotency_key = $2`, [sessionId, key]);
  return rows[0] ? toEvent(rows[0]) : null;
}
