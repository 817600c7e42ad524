export const dynamic = "force-dynamic";

/** The process is up and serving; says nothing about the database (that is /readyz). */
export function GET() {
  return Response.json({ ok: true });
}
