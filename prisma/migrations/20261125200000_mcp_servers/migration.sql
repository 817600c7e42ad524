-- AlterTable
ALTER TABLE "agent_versions" ADD COLUMN     "mcp_servers" JSONB NOT NULL DEFAULT '[]';

