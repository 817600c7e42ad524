import { KeelError, listAgents } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { modelObject, openaiRoute } from "@/src/openai";

/** One agent of the caller's team, as a model; another team's agent answers like a missing one. */
export const GET = openaiRoute(api.openai.model, async ({ ctx, principal, params }) => {
  const agent = (await listAgents(ctx.pool, principal.teamId)).find((a) => a.name === params.id);
  if (!agent) throw new KeelError("model_not_found", 404, `The model '${params.id}' does not exist`, { model: params.id });
  return modelObject(agent);
});
