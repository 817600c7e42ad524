import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";

/** Who am I; for cookie sessions also the CSRF token (the dashboard reads it after a reload). */
export const GET = route(api.me.get, async ({ principal }) => {
  const { csrfToken, ...p } = principal as typeof principal & { csrfToken?: string };
  return { ...p, csrfToken: csrfToken ?? null };
});
