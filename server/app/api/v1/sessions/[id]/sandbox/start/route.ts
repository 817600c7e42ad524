import { audit } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

// Start (resume, restart or create) the session's sandbox: the one sandbox call that wakes it.
export const POST = route(api.sandbox.start, async ({ ctx, principal, params }) => {
  const view = await ctx.sandboxes.start(principal.teamId, params.id);
  await audit(ctx.pool, principal, "sandbox.start", params.id, { sandboxId: view.sandbox?.id ?? null });
  return view;
});
