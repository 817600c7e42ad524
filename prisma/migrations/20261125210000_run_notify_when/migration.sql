-- Hand-written. The runs NOTIFY trigger fired on every UPDATE, the claim included, and its
-- plpgsql body then decided to do nothing: a function call on the hottest statement of the engine.
-- WHEN clauses let Postgres skip the call for updates that cannot notify (claims, heartbeats,
-- finishes), keeping exactly the same notifications.
DROP TRIGGER "runs_notify" ON "runs";

CREATE TRIGGER "runs_notify_insert" AFTER INSERT ON "runs"
  FOR EACH ROW WHEN (NEW.status = 'queued')
  EXECUTE FUNCTION "keel_notify_run"();

CREATE TRIGGER "runs_notify_update" AFTER UPDATE ON "runs"
  FOR EACH ROW WHEN (
    (NEW.status = 'queued' AND (OLD.status IS DISTINCT FROM 'queued' OR OLD.available_at IS DISTINCT FROM NEW.available_at))
    OR (NEW.cancel_requested AND NOT OLD.cancel_requested)
    OR (NEW.interrupt_requested AND NOT OLD.interrupt_requested))
  EXECUTE FUNCTION "keel_notify_run"();
