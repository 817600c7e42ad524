import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

/** Names and dates only: values never leave the server except into the team's sandboxes. */
export const GET = route(api.secrets.list, async ({ ctx, principal }) => ({ secrets: await ctx.secrets.list(principal) }));
