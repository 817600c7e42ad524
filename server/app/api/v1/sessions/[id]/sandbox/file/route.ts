import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

// A workspace file, read-only: text up to maxBytes (default 256 KiB), or a binary note.
export const GET = route(api.sandbox.file, async ({ ctx, principal, params, query }) =>
  ctx.sandboxes.readFile(principal.teamId, params.id, query.path, { maxBytes: query.maxBytes }),
);
