// The engine's figures as Prometheus metrics (prom-client). One instance per registry; every
// process (web, worker) builds its own and serves it on its /metrics. Names and units follow the
// Prometheus conventions (seconds, _total); labels are low-cardinality: a team id, a tool name,
// an outcome word. Never a session, run or message: those belong in traces and logs.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Queryable } from "../db/pool.js";

const FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SLOW = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

export class EngineMetrics {
  readonly dispatch: Histogram;
  readonly runDuration: Histogram<"outcome">;
  readonly takeovers: Counter<"reason">;
  readonly takeoverTime: Histogram;
  readonly modelCall: Histogram<"outcome">;
  readonly firstToken: Histogram;
  readonly toolCall: Histogram<"tool" | "outcome">;
  readonly sandboxAcquire: Histogram<"driver" | "outcome">;
  readonly eventsAppended: Counter<"type">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.dispatch = new Histogram({
      name: "keel_run_dispatch_seconds",
      help: "From a run becoming claimable (enqueued, or due again) to a worker claiming it, on the database clock",
      buckets: FAST,
      registers,
    });
    this.runDuration = new Histogram({
      name: "keel_run_duration_seconds",
      help: "One worker's hold on a run, claim to release, by how it ended (succeeded, failed, retrying, cancelled, interrupted, waiting_approval, handed_back, claim_lost)",
      labelNames: ["outcome"] as const,
      buckets: SLOW,
      registers,
    });
    this.takeovers = new Counter({
      name: "keel_run_takeovers_total",
      help: "Runs this process took over from a dead or silent worker, by reason (owner_gone, lease_expired)",
      labelNames: ["reason"] as const,
      registers,
    });
    this.takeoverTime = new Histogram({
      name: "keel_run_takeover_seconds",
      help: "From the previous owner's last heartbeat to the takeover (its death lies in between; heartbeats come every lease/3)",
      buckets: SLOW,
      registers,
    });
    this.modelCall = new Histogram({
      name: "keel_model_call_seconds",
      help: "Model calls, request to the complete answer, by outcome (ok, error)",
      labelNames: ["outcome"] as const,
      buckets: SLOW,
      registers,
    });
    this.firstToken = new Histogram({
      name: "keel_model_first_token_seconds",
      help: "Model calls, request to the first streamed delta",
      buckets: FAST.concat([30, 60]),
      registers,
    });
    this.toolCall = new Histogram({
      name: "keel_tool_call_seconds",
      help: "Tool calls by tool name and outcome (ok, error)",
      labelNames: ["tool", "outcome"] as const,
      buckets: SLOW,
      registers,
    });
    this.sandboxAcquire = new Histogram({
      name: "keel_sandbox_acquire_seconds",
      help: "Getting a session's sandbox ready for a tool call (reattach, resume or create), by driver and outcome (ok, error)",
      labelNames: ["driver", "outcome"] as const,
      buckets: SLOW,
      registers,
    });
    this.eventsAppended = new Counter({
      name: "keel_events_appended_total",
      help: "Events this process appended to session logs, by event type",
      labelNames: ["type"] as const,
      registers,
    });
  }
}

/**
 * Queue depth and the age of the oldest due run, by team, read from Postgres when scraped (one
 * grouped statement over the (status, available_at) index). Every process that has a pool may
 * export it; the figures are the same everywhere, so aggregate with max() by team.
 */
export function registerQueueMetrics(registry: Registry, db: Queryable): void {
  const read = async () => {
    const { rows } = await db.query<{ team_id: string; depth: number; age_s: number | null }>(
      `SELECT team_id, count(*)::int AS depth,
              extract(epoch FROM now() - min(available_at) FILTER (WHERE available_at <= now()))::float8 AS age_s
       FROM runs WHERE status = 'queued' GROUP BY team_id`,
    );
    return rows;
  };
  // Both gauges come from one read per scrape: the first collect() starts it, the second reuses it.
  let pending: ReturnType<typeof read> | null = null;
  const once = () => (pending ??= read().finally(() => setTimeout(() => (pending = null), 0)));
  new Gauge({
    name: "keel_queue_depth",
    help: "Queued runs by team (due now or waiting for a retry)",
    labelNames: ["team_id"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await once()) this.set({ team_id: r.team_id }, r.depth);
    },
  });
  new Gauge({
    name: "keel_queue_oldest_age_seconds",
    help: "How long the oldest due, unclaimed run of each team has waited",
    labelNames: ["team_id"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const r of await once()) this.set({ team_id: r.team_id }, Math.max(0, r.age_s ?? 0));
    },
  });
}
