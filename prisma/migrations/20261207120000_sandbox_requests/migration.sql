-- CreateTable
CREATE TABLE "sandbox_requests" (
    "id" UUID NOT NULL,
    "team_id" UUID NOT NULL,
    "session_id" UUID NOT NULL,
    "driver" TEXT NOT NULL,
    "op" TEXT NOT NULL,
    "args" JSONB NOT NULL,
    "deadline_at" TIMESTAMPTZ(3) NOT NULL,
    "claimed_by" TEXT,
    "claimed_at" TIMESTAMPTZ(3),
    "reply" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sandbox_requests_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "sandbox_requests_created_at_idx" ON "sandbox_requests"("created_at");


-- Hand-written (schema.prisma cannot express it): the calls a web process may hand to a worker.
ALTER TABLE "sandbox_requests" ADD CONSTRAINT "sandbox_requests_op_check" CHECK ("op" IN ('list', 'read', 'start'));
