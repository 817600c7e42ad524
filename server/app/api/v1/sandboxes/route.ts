import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

// The team's live sandboxes for the status page. A read of one table, kept here until core/
// exposes a catalog function for it (core/ belongs to the sandbox work in progress).
export const GET = route(api.sandboxes.list, async ({ ctx, principal }) => {
  const { rows } = await ctx.pool.query(
    `SELECT id, session_id AS "sessionId", driver, state, last_error AS "lastError", last_active_at AS "lastActiveAt", created_at AS "createdAt"
     FROM sandboxes WHERE team_id = $1 AND terminated_at IS NULL ORDER BY created_at DESC LIMIT 200`,
    [principal.teamId],
  );
  return { sandboxes: rows };
});
