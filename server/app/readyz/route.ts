import { getContext } from "@/src/context";
import { readiness } from "@/src/readiness";
import { isDraining } from "@/src/shutdown";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  // Draining (SIGTERM received): not ready, so load balancers send new requests elsewhere.
  if (isDraining()) return Response.json({ ok: false, draining: true, database: null, pendingMigrations: [] }, { status: 503 });
  try {
    const r = await readiness(await getContext());
    return Response.json(r, { status: r.ok ? 200 : 503 });
  } catch {
    return Response.json({ ok: false, database: false, pendingMigrations: [], error: "not started (database unreachable?)" }, { status: 503 });
  }
}
