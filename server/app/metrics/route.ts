import { timingSafeEqual } from "node:crypto";
import { metrics } from "@/src/metrics";
import { json } from "@/src/http";
import { webEnv } from "@/src/env";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** Prometheus text. With KEEL_METRICS_TOKEN set, only `Authorization: Bearer <token>` reads it. */
export async function GET(req: Request) {
  const token = webEnv().KEEL_METRICS_TOKEN;
  if (token && !sameToken(req.headers.get("authorization") ?? "", `Bearer ${token}`)) {
    return json({ error: { code: "unauthorized", message: "/metrics needs Authorization: Bearer <KEEL_METRICS_TOKEN>", details: {} } }, 401, {
      "www-authenticate": "Bearer",
    });
  }
  return new Response(await metrics.registry.metrics(), { headers: { "content-type": metrics.registry.contentType } });
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
