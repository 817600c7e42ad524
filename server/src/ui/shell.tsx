"use client";
import Link from "next/link";
import type { ReactNode } from "react";
import { api } from "./api";

export function Shell({ children }: { children: ReactNode }) {
  const logout = async () => {
    await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
    location.href = "/login";
  };
  return (
    <>
      <header className="top">
        <strong>Keel</strong>
        <Link href="/agents">Agents</Link>
        <Link href="/sessions">Sessions</Link>
        <button className="secondary" onClick={logout}>Log out</button>
      </header>
      <main>{children}</main>
    </>
  );
}

/** Loading, error and empty states, the same everywhere. */
export function QueryState({ q, empty, children }: { q: { isPending: boolean; error: Error | null }; empty?: boolean; children: ReactNode }) {
  if (q.isPending) return <p className="muted" role="status">Loading…</p>;
  if (q.error) return <p className="error" role="alert">Could not load: {q.error.message}</p>;
  if (empty) return <p className="muted">Nothing here yet.</p>;
  return <>{children}</>;
}
