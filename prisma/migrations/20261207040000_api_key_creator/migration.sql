-- AlterTable
-- API keys record the member who created them (a key made with a key records that key's creator),
-- and why a key was revoked: removing or demoting that member revokes their keys in the same
-- transaction. Keys from before this migration have no creator and are left as they are.
ALTER TABLE "api_keys" ADD COLUMN "created_by_user_id" UUID,
ADD COLUMN "revoked_reason" TEXT;

-- CreateIndex
CREATE INDEX "api_keys_team_id_created_by_user_id_idx" ON "api_keys"("team_id", "created_by_user_id");

-- AddForeignKey
-- A deleted user takes their keys along: a key must never outlive the person it acts for.
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_created_by_user_id_fkey" FOREIGN KEY ("created_by_user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- CreateIndex
-- Pruning failed logins older than the limits' window (Accounts.pruneLoginAttempts) reads by time alone.
CREATE INDEX "login_attempts_created_at_idx" ON "login_attempts"("created_at");
