import pg from "pg";
import { backoffMs } from "../backoff.js";
import { DriverClient, markPoolConnectErrors } from "./errors.js";

// int8 (bigint) columns: seq, epoch. pg returns them as strings by default; the engine uses
// BigInt so a seq never loses precision or compares as a string. Set per pool, not globally:
// the process-wide pg.types registry is shared with every other pg user loaded in the process.
const engineTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8 ? (v: string) => BigInt(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, "query">;

export function createPool(connectionString: string, opts: { max?: number; applicationName?: string } = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: opts.max ?? 10,
    application_name: opts.applicationName ?? "keel",
    // A dead server must not hang a worker forever; queries fail and the caller retries.
    connectionTimeoutMillis: 5_000,
    keepAlive: true,
    types: engineTypes,
    // Marks the driver's connection errors where they arise (see markDriverErrors in errors.ts).
    Client: DriverClient,
  });
  guardPoolErrors(pool);
  markPoolConnectErrors(pool);
  return pool;
}

/**
 * A connection the server drops (restart, failover, pg_terminate_backend) emits 'error' on its
 * client (if checked out) or on the pool (if idle); without a listener that crashes the process.
 * The query in flight still rejects with the error, and the next query gets a fresh connection.
 */
export function guardPoolErrors(pool: pg.Pool): void {
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
}

/**
 * Runs `fn` in a transaction. With `retries`, a transaction Postgres rolled back as a deadlock
 * victim (40P01) or a serialization failure (40001) runs again from the start, so `fn` must do
 * nothing but database work. The engine keeps one lock order and should never deadlock; this is
 * the backstop that turns an order someone gets wrong into a short wait instead of a 500.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>, opts: { retries?: number } = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transactionOnce(pool, fn);
    } catch (err) {
      const code = pgCode(err);
      if (attempt > (opts.retries ?? 0) || (code !== PgCode.deadlockDetected && code !== PgCode.serializationFailure)) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(attempt, 10, 200)));
    }
  }
}

async function transactionOnce<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const out = await fn(client);
    await client.query("COMMIT");
    return out;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Postgres error codes we branch on. */
export const PgCode = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  invalidTextRepresentation: "22P02",
  deadlockDetected: "40P01",
  serializationFailure: "40001",
} as const;

export function pgCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}
