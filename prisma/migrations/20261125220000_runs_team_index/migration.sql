-- CreateIndex
-- Token usage per team over a time window (GET /api/v1/usage) reads runs by team and creation time.
CREATE INDEX "runs_team_id_created_at_idx" ON "runs"("team_id", "created_at");
