import { fleetStatus } from "@keel/core";
import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

export const GET = route(api.status.get, async ({ ctx, principal }) => fleetStatus(ctx.pool, principal.teamId));
