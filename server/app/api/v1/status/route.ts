import { fleetStatus } from "@keel/core";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

export const GET = route({}, async ({ ctx, principal }) => fleetStatus(ctx.pool, principal.teamId));
