import { api } from "@keel/core/contract/api";
import { route } from "@/src/http";
import { meAnswer } from "@/src/auth-answers";

/** Who am I; for cookie sessions also the CSRF token (the dashboard reads it after a reload). */
export const GET = route(api.me.get, async ({ principal }) => meAnswer(principal));
