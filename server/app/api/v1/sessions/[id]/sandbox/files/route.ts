import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

// One directory of the workspace (not recursive). 409 when the sandbox is not running.
export const GET = route(api.sandbox.files, async ({ ctx, principal, params, query }) =>
  ctx.sandboxes.listFiles(principal.teamId, params.id, query.path || ".", { maxEntries: query.limit }),
);
