import { z } from "zod";
import { audit, setArchived } from "@keel/core";
import { route } from "@/src/http";

const Body = z.strictObject({ archived: z.boolean() });

export const POST = route({ body: Body }, async ({ ctx, principal, params, body }) => {
  await setArchived(ctx.pool, principal.teamId, params.id!, body.archived);
  await audit(ctx.pool, principal, body.archived ? "session.archive" : "session.unarchive", params.id!, {});
  return { id: params.id, archived: body.archived };
});
