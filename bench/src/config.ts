// Settings every system runs with, in one place so the report can state them exactly.
import { Logger as GraphileLogger } from "graphile-worker";
import type PgBoss from "pg-boss";

export type Sys = "keel" | "graphile" | "pgboss";
export const SYSTEMS: readonly Sys[] = ["keel", "graphile", "pgboss"];
export const LABEL: Record<Sys, string> = { keel: "Keel", graphile: "graphile-worker 0.17.3", pgboss: "pg-boss 10.4.2" };

/** The graphile-worker task identifier and the pg-boss queue name. */
export const JOB_NAME = "bench";

/** Keel: production defaults (concurrency 1, pollMs 2000, sweepMs 250, leaseMs 30000), stated explicitly. */
export const KEEL_WORKER = { concurrency: 1, pollMs: 2_000, sweepMs: 250, leaseMs: 30_000 } as const;

/** graphile-worker: defaults (concurrency 1, pollInterval 2000 ms; LISTEN/NOTIFY wakes workers). */
export const GRAPHILE_WORKER = { concurrency: 1, pollInterval: 2_000, noHandleSignals: true } as const;

/** pg-boss has no LISTEN: workers poll. 0.5 s is its minimum polling interval (default 2 s). */
export const PGBOSS_POLL_S = 0.5;
/** pg-boss's documented throughput knob: jobs fetched per poll. Throughput is run with 1 and with this. */
export const PGBOSS_BIG_BATCH = 50;
/** pg-boss crash recovery: the shortest supported expiry (1 s) and maintenance interval (1 s). */
export const PGBOSS_TAKEOVER_JOB: PgBoss.SendOptions = { expireInSeconds: 1, retryLimit: 1, retryDelay: 0 };
export const PGBOSS_CONSTRUCTOR: PgBoss.ConstructorOptions = { max: 4, schedule: false, maintenanceIntervalSeconds: 1, supervise: true };

export const graphileLogger = new GraphileLogger(() => () => {});
