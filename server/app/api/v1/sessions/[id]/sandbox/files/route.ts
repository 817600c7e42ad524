import { z } from "zod";
import { q, route } from "@/src/http";

export const dynamic = "force-dynamic";

const Query = z.strictObject({
  path: z.string().max(4096).refine((p) => !p.includes("\0"), "must not contain NUL").default("."),
  limit: q.int(1, 5000).optional(),
});

// One directory of the workspace (not recursive). 409 when the sandbox is not running.
export const GET = route({ query: Query }, async ({ ctx, principal, params, query }) =>
  ctx.sandboxes.listFiles(principal.teamId, params.id!, query.path || ".", { maxEntries: query.limit }),
);
