// The session view's sandbox calls, handed from the web process to a worker through PostgreSQL.
//
// On Kubernetes the workers hold everything a call on a sandbox needs: the ServiceAccount that may
// read SandboxClaims, the runtime tokens (which also allow `exec`, not only reads) and the one
// network path the sandbox NetworkPolicy admits. The web holds none of it and gets none of it: it
// writes a request row, NOTIFYs, and waits for a worker's reply until a deadline. Only what a
// member may ask through the session view travels: list a directory, read a file (read-only, from
// a ready sandbox only) and start the sandbox. No secret does: the worker resolves the policy and
// decrypts the team's secrets itself. Why not a ServiceAccount for the web: README.md, "Session
// view on Kubernetes".
//
// A table and not NOTIFY alone: a reply (a file of up to 1 MiB) is larger than NOTIFY's 8000-byte
// payload. The worker runs the same `SessionSandboxes` calls the web would (team scope, "ready
// only", error mapping), so a forged or stale row can do nothing a member could not.
import { randomUUID } from "node:crypto";
import { assertNever, KeelError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Queryable } from "../db/pool.js";
import { PgListener } from "../db/listener.js";
import { SandboxError, SandboxUnavailableError } from "./errors.js";
import type { RelayArgs, RelayOp, SandboxRemote, SessionSandboxes } from "./view.js";

export const SANDBOX_REQUESTS_CHANNEL = "keel_sandbox_requests";
export const SANDBOX_REPLIES_CHANNEL = "keel_sandbox_replies";

/** The largest listing and file the session-view routes ask for (a reply is held in memory twice). */
const MAX_ENTRIES = 5_000;
const MAX_BYTES = 1_048_576;

type Reply = { ok: true; value: unknown } | { ok: false; error: { code: string; status: number; message: string; details: Record<string, unknown> } };

/** The web's side: one request row per call, answered by whichever worker claims it first. */
export class SandboxRelayClient implements SandboxRemote {
  readonly driverName: string;
  private readonly waiters = new Map<string, { notified: boolean; wake?: () => void }>();
  private listener?: PgListener;
  private lastPruneMs = 0;

  constructor(
    private readonly o: {
      pool: Queryable;
      connectionString: string;
      driverName: string;
      logger: Logger;
      /** How long a list or read may take, all included (a worker to take it, the sandbox to answer). */
      filesTimeoutMs?: number;
      /** How long a start may take (the driver's own readiness wait is 120 s by default). */
      startTimeoutMs?: number;
      /** A reply is looked for at least this often, in case its NOTIFY was missed (listener reconnecting). */
      pollMs?: number;
    },
  ) {
    this.driverName = o.driverName;
  }

  async call(op: RelayOp, teamId: string, sessionId: string, args: RelayArgs = {}): Promise<unknown> {
    const timeoutMs = op === "start" ? (this.o.startTimeoutMs ?? 150_000) : (this.o.filesTimeoutMs ?? 10_000);
    await this.listening();
    await this.prune();
    const id = randomUUID();
    const box: { notified: boolean; wake?: () => void } = { notified: false };
    this.waiters.set(id, box); // before the INSERT: a reply can come before we start waiting
    const deadline = Date.now() + timeoutMs;
    try {
      // One statement: the NOTIFY is delivered when the row is committed, never before.
      await this.o.pool.query(
        `WITH r AS (
           INSERT INTO sandbox_requests (id, team_id, session_id, driver, op, args, deadline_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + $7 * interval '1 millisecond') RETURNING id)
         SELECT pg_notify('${SANDBOX_REQUESTS_CHANNEL}', id::text) FROM r`,
        [id, teamId, sessionId, this.driverName, op, JSON.stringify(args), timeoutMs],
      );
      for (;;) {
        const { rows } = await this.o.pool.query<{ reply: string | null; claimed: boolean }>(
          `SELECT reply, claimed_at IS NOT NULL AS claimed FROM sandbox_requests WHERE id = $1`,
          [id],
        );
        if (rows[0]?.reply) return decode(rows[0].reply);
        const leftMs = deadline - Date.now();
        if (leftMs <= 0) {
          const s = Math.round(timeoutMs / 100) / 10;
          throw new SandboxUnavailableError(
            rows[0]?.claimed
              ? `the sandbox did not answer within ${s} s (a worker is trying: it may be slow, unreachable or starting)`
              : `no worker took the request within ${s} s: are workers running with KEEL_SANDBOX_DRIVER=${this.driverName}?`,
            { timeoutMs, op },
          );
        }
        await this.nextSignal(box, Math.min(leftMs, this.o.pollMs ?? 1_000));
      }
    } finally {
      this.waiters.delete(id);
      await this.o.pool
        .query(`DELETE FROM sandbox_requests WHERE id = $1`, [id])
        .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message }, "sandbox request cleanup failed"));
    }
  }

  async stop(): Promise<void> {
    await this.listener?.stop();
  }

  private listening(): Promise<void> {
    this.listener ??= new PgListener({
      connectionString: this.o.connectionString,
      channels: [SANDBOX_REPLIES_CHANNEL],
      applicationName: "keel-web-sandbox-replies",
      logger: this.o.logger,
      onNotification: (_ch, id) => {
        const box = this.waiters.get(id);
        if (!box) return; // another web replica's request
        box.notified = true;
        box.wake?.();
      },
    });
    return this.listener.start();
  }

  private nextSignal(box: { notified: boolean; wake?: () => void }, ms: number): Promise<void> {
    if (box.notified) {
      box.notified = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        box.wake = undefined;
        box.notified = false;
        resolve();
      }
      box.wake = done;
    });
  }

  /** Rows of a web process that died while waiting; at most once a minute per process. */
  private async prune(): Promise<void> {
    if (Date.now() - this.lastPruneMs < 60_000) return;
    this.lastPruneMs = Date.now();
    await this.o.pool.query(`DELETE FROM sandbox_requests WHERE deadline_at < now() - interval '1 minute'`);
  }
}

function decode(text: string): unknown {
  const r = JSON.parse(text) as Reply;
  if (r.ok) return r.value;
  const { code, status, message, details } = r.error;
  throw code === "sandbox_unavailable" ? new SandboxUnavailableError(message, details) : new SandboxError(code, status, message, details);
}

/** The worker's side: claims requests for its driver and runs them through its SessionSandboxes. */
export class SandboxRelayServer {
  private listener?: PgListener;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private draining = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly o: {
      pool: Queryable;
      connectionString: string;
      /** The worker's view on its own driver (team scope, ready-only reads, error mapping). */
      view: SessionSandboxes;
      driverName: string;
      workerId: string;
      logger: Logger;
      /** Calls one worker runs at once; more wait for another worker or a free slot. */
      concurrency?: number;
    },
  ) {}

  async start(): Promise<void> {
    this.listener = new PgListener({
      connectionString: this.o.connectionString,
      channels: [],
      applicationName: "keel-worker-sandbox-requests",
      logger: this.o.logger,
      // LISTEN here, then look for requests made while we were not listening (start, reconnect).
      onConnect: async (client) => {
        await client.query(`LISTEN ${SANDBOX_REQUESTS_CHANNEL}`);
        setImmediate(() => void this.drain());
      },
      onNotification: () => void this.drain(),
    });
    await this.listener.start();
  }

  /** Stops taking requests and waits for the ones running (each is bounded by its deadline). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.listener?.stop();
    await Promise.allSettled([...this.running]);
  }

  private async drain(): Promise<void> {
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.again = false;
        while (!this.stopped && this.inFlight < (this.o.concurrency ?? 8)) {
          const req = await this.claim();
          if (!req) break;
          this.inFlight++;
          // serve() never throws (every failure becomes a reply or a log line); catch() is the backstop.
          const p = this.serve(req)
            .catch((err: unknown) => this.o.logger.error({ err }, "sandbox request crashed"))
            .finally(() => {
              this.inFlight--;
              this.running.delete(p);
              void this.drain();
            });
          this.running.add(p);
        }
      } while (this.again && !this.stopped);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, "sandbox request claim failed");
    } finally {
      this.draining = false;
    }
  }

  // The oldest unexpired request for this driver; SKIP LOCKED so workers never wait on each other.
  private async claim(): Promise<{ id: string; teamId: string; sessionId: string; op: RelayOp; args: RelayArgs; leftMs: number } | null> {
    const { rows } = await this.o.pool.query<{ id: string; team_id: string; session_id: string; op: RelayOp; args: RelayArgs; left_ms: number }>(
      `UPDATE sandbox_requests SET claimed_by = $2, claimed_at = now()
       WHERE id = (SELECT id FROM sandbox_requests WHERE claimed_at IS NULL AND driver = $1 AND deadline_at > now()
                   ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
       RETURNING id, team_id, session_id, op, args, (EXTRACT(EPOCH FROM deadline_at - now()) * 1000)::int AS left_ms`,
      [this.o.driverName, this.o.workerId],
    );
    const r = rows[0];
    return r ? { id: r.id, teamId: r.team_id, sessionId: r.session_id, op: r.op, args: r.args ?? {}, leftMs: r.left_ms } : null;
  }

  private async serve(req: { id: string; teamId: string; sessionId: string; op: RelayOp; args: RelayArgs; leftMs: number }): Promise<void> {
    const log = this.o.logger.child({ teamId: req.teamId, sessionId: req.sessionId, requestId: req.id });
    // The sandbox gets what is left of the web's deadline, less a margin for the reply to reach the
    // web in time: past the deadline nobody reads it.
    const signal = AbortSignal.timeout(Math.max(1, Math.floor(req.leftMs - Math.min(1_000, req.leftMs / 4))));
    let reply: Reply;
    try {
      reply = { ok: true, value: await this.run(req, signal) };
    } catch (err) {
      if (signal.aborted) {
        reply = {
          ok: false,
          error: { code: "sandbox_unavailable", status: 503, message: "the sandbox did not answer before the request's deadline", details: {} },
        };
      } else if (err instanceof KeelError) {
        reply = { ok: false, error: { code: err.code, status: err.status, message: err.message, details: err.details } };
      } else {
        log.warn({ err: (err as Error).message, op: req.op }, "sandbox request failed");
        reply = { ok: false, error: { code: "sandbox_unavailable", status: 503, message: "the worker could not complete the sandbox call", details: {} } };
      }
    }
    try {
      // No row left (the web gave up and deleted it): nothing to say, nobody to say it to.
      await this.o.pool.query(
        `WITH u AS (UPDATE sandbox_requests SET reply = $2 WHERE id = $1 RETURNING id) SELECT pg_notify('${SANDBOX_REPLIES_CHANNEL}', id::text) FROM u`,
        [req.id, JSON.stringify(reply)],
      );
    } catch (err) {
      log.warn({ err: (err as Error).message }, "sandbox request reply failed");
    }
  }

  private async run(req: { teamId: string; sessionId: string; op: RelayOp; args: RelayArgs }, signal: AbortSignal): Promise<unknown> {
    const { view } = this.o;
    // The routes' own limits, again here: a row is only as trustworthy as whoever could write it.
    const path = typeof req.args.path === "string" ? req.args.path : undefined;
    const cap = (n: unknown, max: number) => (typeof n === "number" && Number.isInteger(n) && n > 0 ? Math.min(n, max) : undefined);
    switch (req.op) {
      case "list":
        return view.listFiles(req.teamId, req.sessionId, path ?? ".", { maxEntries: cap(req.args.maxEntries, MAX_ENTRIES), signal });
      case "read":
        return view.readFile(req.teamId, req.sessionId, path ?? "", { maxBytes: cap(req.args.maxBytes, MAX_BYTES), signal });
      case "start":
        await view.start(req.teamId, req.sessionId); // a team id: the web that relayed it wrote the audit row
        return null; // the web describes the sandbox from the table itself
      default:
        return assertNever(req.op, "sandbox request op");
    }
  }
}
