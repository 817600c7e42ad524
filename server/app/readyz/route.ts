import { getContext } from "@/src/context";
import { readiness } from "@/src/readiness";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

export async function GET() {
  try {
    const r = await readiness(await getContext());
    return Response.json(r, { status: r.ok ? 200 : 503 });
  } catch {
    return Response.json({ ok: false, database: false, pendingMigrations: [], error: "not started (database unreachable?)" }, { status: 503 });
  }
}
