"use client";
import { useState, type FormEvent } from "react";
import { api, keel, setCsrf } from "@/src/ui/api";
import { ErrorNote } from "@/src/ui/shell";

export default function LoginPage() {
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setBusy(true);
    setError(null);
    try {
      const r = await keel.call(api.auth.login, { body: { email: String(f.get("email") ?? ""), password: String(f.get("password") ?? "") } });
      setCsrf(r.csrfToken);
      location.href = "/agents";
    } catch (err) {
      setError(err as Error);
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <h1>Log in to Keel</h1>
      <form className="stack" onSubmit={submit}>
        <label>
          Email <input name="email" type="email" autoComplete="username" required />
        </label>
        <label>
          Password <input name="password" type="password" autoComplete="current-password" required />
        </label>
        <button disabled={busy}>{busy ? "Logging in…" : "Log in"}</button>
        <ErrorNote error={error} />
      </form>
    </main>
  );
}
