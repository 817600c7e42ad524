-- CreateTable
CREATE TABLE "sandboxes" (
    "id" UUID NOT NULL,
    "team_id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "driver" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "last_error" TEXT,
    "last_active_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "terminated_at" TIMESTAMPTZ(3),

    CONSTRAINT "sandboxes_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "sandboxes_team_id_state_idx" ON "sandboxes"("team_id", "state");

-- AddForeignKey
ALTER TABLE "sandboxes" ADD CONSTRAINT "sandboxes_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "sandboxes" ADD CONSTRAINT "sandboxes_session_id_fkey" FOREIGN KEY ("session_id") REFERENCES "sessions"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Hand-written (schema.prisma cannot express these):
-- a session has at most one sandbox that is not terminated, and states are the driver's six.
CREATE UNIQUE INDEX "sandboxes_one_live_per_session" ON "sandboxes"("session_id") WHERE "state" <> 'terminated';
ALTER TABLE "sandboxes" ADD CONSTRAINT "sandboxes_state_check" CHECK ("state" IN ('requested', 'provisioning', 'ready', 'suspended', 'failed', 'terminated'));
