import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

// Start (resume, restart or create) the session's sandbox: the one sandbox call that wakes it.
export const POST = route(api.sandbox.start, async ({ ctx, principal, params }) => {
  return ctx.sandboxes.start(principal, params.id);
});
