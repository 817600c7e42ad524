-- The run states of core/README.md's diagram (RUN_STATUSES in core/src/engine/types.ts), enforced
-- by the database: a status no edge of the lifecycle writes is refused, whoever writes it.
-- Adding the constraint scans runs once under an exclusive lock; rows have only ever held these.
ALTER TABLE "runs" ADD CONSTRAINT "runs_status_check"
  CHECK ("status" IN ('queued', 'running', 'waiting_approval', 'succeeded', 'failed', 'cancelled', 'interrupted'));
