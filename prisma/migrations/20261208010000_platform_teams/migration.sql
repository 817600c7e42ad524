-- AlterTable
-- Platform operators (issue 18): a user flag, distinct from team roles. The first-start admin
-- (KEEL_ADMIN_EMAIL) gets it; after that only a platform admin (or `keel platform-admins` against
-- DATABASE_URL) grants it. A suspended team keeps its rows; its keys and logins answer 403 with
-- the reason and its queued runs are not claimed (the claim's WHERE reads suspended_at).
ALTER TABLE "users" ADD COLUMN "platform_admin" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "teams" ADD COLUMN "suspended_at" TIMESTAMPTZ(3),
ADD COLUMN "suspended_reason" TEXT;

-- AlterTable
-- A key made with `platform: true` may call the platform routes while its creator is a platform admin.
ALTER TABLE "api_keys" ADD COLUMN "platform" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
-- Invitations by link: single use (accepted_at), expiring, only the token's SHA-256 stored.
CREATE TABLE "invitations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "team_id" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "accepted_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "invitations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "invitations_token_hash_key" ON "invitations"("token_hash");

-- CreateIndex
CREATE INDEX "invitations_team_id_created_at_idx" ON "invitations"("team_id", "created_at");

-- AddForeignKey
ALTER TABLE "invitations" ADD CONSTRAINT "invitations_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams"("id") ON DELETE CASCADE ON UPDATE CASCADE;
