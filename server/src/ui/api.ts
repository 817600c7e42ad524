"use client";
// Browser side of the API: the one typed client (@keel/core/contract/api-client) with the cookie
// session plus the CSRF token (from login, or /me after a reload).
import { useState, type FormEvent } from "react";
import { ApiClient, ApiError } from "@keel/core/contract/api-client";
import { api } from "@keel/core/contract/api";

export { api, ApiError };

let csrf: string | null = null;

export function setCsrf(token: string | null) {
  csrf = token;
}

async function csrfToken(): Promise<string | null> {
  // A GET, so this call asks for no token itself.
  if (!csrf) csrf = (await keel.call(api.me.get).catch(() => null))?.csrfToken ?? null;
  return csrf;
}

/** Every dashboard call: same origin, and a 401 sends the browser to the login page (but not from /login or /invite). */
export const keel = new ApiClient({
  baseUrl: "",
  credentials: { csrfToken },
  fetch: async (url, init) => {
    const res = await fetch(url, init);
    // Not from the pages a stranger uses: the login page and an invitation link.
    if (res.status === 401 && typeof window !== "undefined" && !/^\/(login|invite)/.test(location.pathname)) location.href = "/login";
    return res;
  },
});

/** Dates as the browser's locale shows them; "–" for none. */
export function when(d: string | Date | null | undefined): string {
  return d ? new Date(d).toLocaleString() : "–";
}

/**
 * A form that ends in a login (the login page, an accepted invitation): the answer's CSRF token is
 * kept and the browser goes to the agents; a refusal is shown and the form can be sent again.
 */
export function useSignIn(signIn: (form: FormData) => Promise<{ csrfToken: string }>) {
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      setCsrf((await signIn(form)).csrfToken);
      location.href = "/agents";
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  return { submit, busy, error };
}
