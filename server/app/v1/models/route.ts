import { listAgents } from "@keel/core";
import { route } from "@/src/http";

/** Every agent of the caller's team is a model, by name. */
export const GET = route({}, async ({ ctx, principal }) => ({
  object: "list",
  data: (await listAgents(ctx.pool, principal.teamId)).map((a) => ({ id: a.name, object: "model", created: Math.floor(new Date(a.createdAt).getTime() / 1000), owned_by: "keel" })),
}));
