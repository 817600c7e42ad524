import { z } from "zod";
import { q, route } from "@/src/http";

export const dynamic = "force-dynamic";

const Query = z.strictObject({
  path: z.string().min(1).max(4096).refine((p) => !p.includes("\0"), "must not contain NUL"),
  maxBytes: q.int(1, 1_048_576).optional(),
});

// A workspace file, read-only: text up to maxBytes (default 256 KiB), or a binary note.
export const GET = route({ query: Query }, async ({ ctx, principal, params, query }) =>
  ctx.sandboxes.readFile(principal.teamId, params.id!, query.path, { maxBytes: query.maxBytes }),
);
