-- AlterTable
-- Hosts a secret may be sent to by the workers (provider key, MCP header); empty = not bound.
ALTER TABLE "secrets" ADD COLUMN     "allowed_hosts" TEXT[] DEFAULT ARRAY[]::TEXT[];
