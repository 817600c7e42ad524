import { ValidationError } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { parseSeq, reauthenticate, route } from "@/src/http";
import { sessionStream } from "@/src/sse";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** SSE. Resume with the Last-Event-ID header (what EventSource sends) or ?after=<seq>. */
export const GET = route(api.sessions.stream, async ({ req, ctx, principal, params, query }) => {
  await ctx.tenancy.getSession(principal.teamId, params.id); // 404 for missing and foreign alike
  const last = req.headers.get("last-event-id");
  const lastSeq = last === null ? null : parseSeq(last);
  if (last !== null && lastSeq === null) throw new ValidationError("Last-Event-ID must be an event seq");
  const after = lastSeq ?? query.after ?? 0n;
  // Every heartbeat: the same credentials still valid for this team, and the session still there.
  const recheck = async () => (await reauthenticate(ctx, req, principal), await ctx.tenancy.getSession(principal.teamId, params.id));
  return sessionStream(ctx, req, params.id, after, { recheck, maxAgeMs: ctx.env.KEEL_SSE_MAX_AGE_MS });
});
