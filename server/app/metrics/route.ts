import { metricsAuthorized, METRICS_UNAUTHORIZED } from "@keel/core/telemetry";
import { metrics } from "@/src/metrics";
import { json } from "@/src/http";
import { webEnv } from "@/src/env";
import { getContext } from "@/src/context";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";

/** Prometheus text. With KEEL_METRICS_TOKEN set, only `Authorization: Bearer <token>` reads it (the worker's metrics port checks the same way). */
export async function GET(req: Request) {
  if (!metricsAuthorized(req.headers.get("authorization"), webEnv().KEEL_METRICS_TOKEN)) {
    return json({ error: { code: "unauthorized", message: METRICS_UNAUTHORIZED, details: {} } }, 401, { "www-authenticate": "Bearer" });
  }
  // The engine's figures (queue depth, ...) register with the context; without a database the process metrics still answer.
  await getContext().catch(() => null);
  return new Response(await metrics.registry.metrics(), { headers: { "content-type": metrics.registry.contentType } });
}
