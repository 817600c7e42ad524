-- AlterTable
ALTER TABLE "agent_versions" ADD COLUMN     "provider" JSONB NOT NULL DEFAULT '{}';

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "completion_tokens" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "prompt_tokens" INTEGER NOT NULL DEFAULT 0;

-- AlterTable
ALTER TABLE "tool_calls" ADD COLUMN     "approval" TEXT,
ADD COLUMN     "approval_reason" TEXT;

