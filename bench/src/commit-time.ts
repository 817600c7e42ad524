// The instant a job's enqueue transaction committed, as PostgreSQL recorded it.
//
// "Enqueue call resolved" is a late and system-dependent stand-in for "committed": the producer
// sees its commit only after the server answers and its client library hands the result back,
// while the worker's NOTIFY leaves at the same commit. graphile-worker's claim was seen to start
// ~0.9 ms *before* its own addJob resolved, so measuring from the resolve flattered it by about
// that much. With track_commit_timestamp on, pg_xact_commit_timestamp() gives the commit time
// (microseconds, the host's clock, the same clock performance.timeOrigin is on). An AFTER INSERT
// trigger notes each job's transaction id; it is installed for the dispatch measurement only,
// so it costs the enqueue one extra row and nothing on the dispatch path.
import pg from "pg";

export type CommitProbe = {
  /** Commit instant (epoch ms, µs resolution) of each job id's enqueue transaction. */
  read(ids: readonly string[]): Promise<Map<string, number>>;
  remove(): Promise<void>;
};

/** null when the server does not track commit timestamps (e.g. a BENCH_DATABASE_URL server without it). */
export async function installCommitProbe(url: string, table: string): Promise<CommitProbe | null> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const on = (await c.query<{ v: string }>("SELECT current_setting('track_commit_timestamp') AS v")).rows[0]!.v === "on";
  if (!on) {
    await c.end();
    return null;
  }
  await c.query(`
    CREATE TABLE IF NOT EXISTS bench_commit (job text PRIMARY KEY, xid xid8 NOT NULL);
    CREATE OR REPLACE FUNCTION bench_note_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO bench_commit VALUES (NEW.id::text, pg_current_xact_id()) ON CONFLICT DO NOTHING; RETURN NULL; END $$;
    DROP TRIGGER IF EXISTS bench_note_commit ON ${table};
    CREATE TRIGGER bench_note_commit AFTER INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION bench_note_commit();`);
  return {
    read: async (ids) => {
      const { rows } = await c.query<{ job: string; ms: string }>(
        // xid8 → xid keeps the low 32 bits, which is what pg_xact_commit_timestamp takes.
        `SELECT job, extract(epoch FROM pg_xact_commit_timestamp((xid::text::numeric % 4294967296)::text::xid)) * 1000 AS ms
         FROM bench_commit WHERE job = ANY($1::text[])`,
        [ids],
      );
      return new Map(rows.filter((r) => r.ms !== null).map((r) => [r.job, Number(r.ms)]));
    },
    remove: async () => {
      await c.query(`DROP TRIGGER IF EXISTS bench_note_commit ON ${table}; DROP TABLE IF EXISTS bench_commit; DROP FUNCTION IF EXISTS bench_note_commit()`);
      await c.end();
    },
  };
}
