"use client";
import { api, keel, useSignIn } from "@/src/ui/api";
import { ErrorNote } from "@/src/ui/shell";

export default function LoginPage() {
  const { submit, busy, error } = useSignIn((f) =>
    keel.call(api.auth.login, { body: { email: String(f.get("email") ?? ""), password: String(f.get("password") ?? "") } }),
  );
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
