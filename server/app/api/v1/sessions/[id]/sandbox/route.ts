import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

export const dynamic = "force-dynamic";

// The session's sandbox: state, driver, policy summary, whether its files can be browsed now.
// Reads the database and the policy only: it never wakes a sandbox.
export const GET = route(api.sandbox.get, async ({ ctx, principal, params }) => ctx.sandboxes.describe(principal.teamId, params.id));
