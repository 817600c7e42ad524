import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const GET = route(api.runs.get, async ({ ctx, principal, params }) => {
  const r = await ctx.engine.getRun({ teamId: principal.teamId, runId: params.id });
  const { leaseOwner: _owner, epoch: _epoch, ...visible } = r; // worker internals stay inside
  return visible;
});
