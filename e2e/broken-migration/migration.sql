-- Broken on purpose (e2e/migration.test.ts): the first statement succeeds, the second fails, so
-- the migration must be rolled back whole (the column must not exist afterwards).
ALTER TABLE "sessions" ADD COLUMN "e2e_broken_migration" TEXT;
CREATE INDEX "e2e_broken_idx" ON "e2e_no_such_table" ("id");
