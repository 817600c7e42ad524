-- What the run engine needs that schema.prisma cannot express. Hand-written.

-- At most one running run per session, enforced by the database: even if two workers raced past
-- the claim query's NOT EXISTS check, the second UPDATE to 'running' fails on this index.
CREATE UNIQUE INDEX "runs_one_running_per_session" ON "runs"("session_id") WHERE "status" = 'running';

-- The claim query scans only claimable rows.
CREATE INDEX "runs_queued_available_at_idx" ON "runs"("available_at", "created_at") WHERE "status" = 'queued';

-- Workers hold pg_advisory_lock(<keel namespace>, lock_key) on a dedicated connection while they
-- live; the key comes from here so no two workers share one.
CREATE SEQUENCE "workers_lock_key_seq" AS INTEGER MINVALUE 1 CYCLE;
ALTER TABLE "workers" ALTER COLUMN "lock_key" SET DEFAULT nextval('workers_lock_key_seq');

-- Wake-ups. Every queued run (new, retried or handed back) and every appended event notifies, so
-- no code path can forget to. Payloads are unique per row: Postgres folds identical
-- notifications sent in one transaction into one.
CREATE FUNCTION "keel_notify_run"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'queued' AND (TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'queued' OR OLD.available_at IS DISTINCT FROM NEW.available_at) THEN
    PERFORM pg_notify('keel_runs', NEW.id::text || ':' || NEW.epoch::text || ':' || NEW.attempt::text);
  ELSIF TG_OP = 'UPDATE' AND (NEW.cancel_requested AND NOT OLD.cancel_requested OR NEW.interrupt_requested AND NOT OLD.interrupt_requested) THEN
    PERFORM pg_notify('keel_run_signals', NEW.id::text || ':' || NEW.epoch::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER "runs_notify" AFTER INSERT OR UPDATE ON "runs" FOR EACH ROW EXECUTE FUNCTION "keel_notify_run"();

CREATE FUNCTION "keel_notify_event"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('keel_events', NEW.session_id::text || ':' || NEW.seq::text);
  RETURN NULL;
END $$;
CREATE TRIGGER "session_events_notify" AFTER INSERT ON "session_events" FOR EACH ROW EXECUTE FUNCTION "keel_notify_event"();
