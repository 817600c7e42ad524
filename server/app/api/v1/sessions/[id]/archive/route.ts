import { audit, setArchived } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const POST = route(api.sessions.archive, async ({ ctx, principal, params, body }) => {
  await setArchived(ctx.pool, principal.teamId, params.id, body.archived);
  await audit(ctx.pool, principal, body.archived ? "session.archive" : "session.unarchive", params.id, {});
  return { id: params.id, archived: body.archived };
});
