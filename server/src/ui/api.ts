"use client";
// Browser side of the API: cookie session plus the CSRF token (from login, or /me after a reload).
let csrf: string | null = null;

export type Issue = { path: string; message: string };

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
  }
  /** The 422 field issues, if any: `[{ path: "tools.0.name", message }]`. */
  get issues(): Issue[] {
    const i = this.details.issues;
    return Array.isArray(i) ? (i as Issue[]) : [];
  }
}

export function setCsrf(token: string | null) {
  csrf = token;
}

export async function api<T = unknown>(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<T> {
  const method = init.method ?? "GET";
  if (method !== "GET" && !csrf && path !== "/api/v1/auth/login") {
    const me = await fetch("/api/v1/me");
    if (me.ok) csrf = ((await me.json()) as { csrfToken: string | null }).csrfToken;
  }
  const res = await fetch(path, {
    method,
    headers: { ...(init.body !== undefined ? { "content-type": "application/json" } : {}), ...(csrf ? { "x-csrf-token": csrf } : {}), ...init.headers },
    body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  if (res.status === 401 && typeof window !== "undefined" && !location.pathname.startsWith("/login")) location.href = "/login";
  const text = await res.text();
  let data: any;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    // A proxy's HTML error page, or the web process restarting: say so instead of a JSON parse error.
    throw new ApiError(res.status, "bad_response", `${res.status} ${res.statusText || "unexpected response"}`);
  }
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? "error", data?.error?.message ?? res.statusText, data?.error?.details ?? {});
  return data as T;
}

/** Dates as the browser's locale shows them; "–" for none. */
export function when(d: string | Date | null | undefined): string {
  return d ? new Date(d).toLocaleString() : "–";
}
