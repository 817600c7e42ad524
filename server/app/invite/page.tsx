"use client";
// An invitation link: /invite#<token> (the fragment never reaches a server or a log). Shows what
// the invitation is for; a new person chooses a password, an existing account enters its own.
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, keel, useSignIn } from "@/src/ui/api";
import { ErrorNote } from "@/src/ui/shell";

export default function InvitePage() {
  const [token] = useState(() => (typeof location === "undefined" ? "" : decodeURIComponent(location.hash.slice(1))));
  const preview = useQuery({
    queryKey: ["invitation", token],
    queryFn: () => keel.call(api.invitations.lookup, { body: { token } }),
    enabled: token !== "",
    retry: false,
  });
  const { submit, busy, error } = useSignIn((f) => keel.call(api.invitations.accept, { body: { token, password: String(f.get("password") ?? "") } }));
  const p = preview.data;
  return (
    <main className="login">
      <h1>Join a team on Keel</h1>
      {!token && <p className="error">This link has no invitation in it.</p>}
      {preview.isPending && token && <p className="muted">Loading…</p>}
      <ErrorNote error={preview.error} />
      {p && (
        <form className="stack" onSubmit={submit} aria-label="accept invitation">
          <p data-testid="invitation">
            <strong>{p.email}</strong> is invited to <strong>{p.teamName}</strong> ({p.teamSlug}) as {p.role}.
          </p>
          <label>
            {p.existingAccount ? "Your password" : "Choose a password (12+ characters)"}
            <input
              name="password"
              type="password"
              autoComplete={p.existingAccount ? "current-password" : "new-password"}
              minLength={p.existingAccount ? undefined : 12}
              required
            />
          </label>
          <button disabled={busy}>{busy ? "Joining…" : "Join the team"}</button>
          <ErrorNote error={error} />
        </form>
      )}
    </main>
  );
}
