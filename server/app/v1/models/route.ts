import { listAgents } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { modelObject, openaiRoute } from "@/src/openai";

/** Every agent of the caller's team is a model, by name. */
export const GET = openaiRoute(api.openai.models, async ({ ctx, principal }) => ({
  object: "list",
  data: (await listAgents(ctx.pool, principal.teamId)).map(modelObject),
}));
