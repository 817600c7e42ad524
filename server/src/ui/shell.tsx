"use client";
import Link from "next/link";
import { usePathname } from "next/navigation";
import { useQuery } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { api, ApiError, keel, setCsrf } from "./api";

const NAV = [
  ["/agents", "Agents"],
  ["/sessions", "Sessions"],
  ["/approvals", "Approvals"],
  ["/status", "Status"],
  ["/settings", "Team"],
  ["/audit", "Audit"],
] as const;

/**
 * The teams of the logged-in user: switching moves this login to the other team and reloads (every
 * query belongs to the team). Shown only to someone in more than one team.
 */
function TeamSwitcher() {
  const teams = useQuery({ queryKey: ["my-teams"], queryFn: () => keel.call(api.me.teams) });
  const list = teams.data?.teams ?? [];
  if (list.length < 2) return null;
  const current = list.find((t) => t.current);
  const switchTo = async (teamId: string) => {
    const me = await keel.call(api.me.switchTeam, { body: { teamId } }).catch((err: Error) => (alert(err.message), null));
    if (!me) return;
    setCsrf(me.csrfToken);
    location.href = "/agents";
  };
  return (
    <select aria-label="team" value={current?.teamId ?? ""} onChange={(e) => void switchTo(e.target.value)}>
      {list.map((t) => (
        <option key={t.teamId} value={t.teamId} disabled={t.suspended}>
          {t.name} ({t.slug}){t.suspended ? ", suspended" : ""}
        </option>
      ))}
    </select>
  );
}

export function Shell({ children }: { children: ReactNode }) {
  const path = usePathname() ?? "";
  // The inbox's count on every page; the approvals page shares the key, so deciding updates it.
  const waiting = useQuery({
    queryKey: ["approvals", "count"],
    queryFn: () => keel.call(api.approvals.list, { query: { limit: "1" } }),
    refetchInterval: 10_000,
  });
  const count = waiting.data?.total ?? 0;
  const me = useQuery({ queryKey: ["me"], queryFn: () => keel.call(api.me.get) });
  const logout = async () => {
    await keel.call(api.auth.logout).catch(() => {});
    location.href = "/login";
  };
  return (
    <>
      <header className="top">
        <strong>Keel</strong>
        <nav>
          {NAV.map(([href, label]) => (
            <Link key={href} href={href} aria-current={path.startsWith(href) ? "page" : undefined}>
              {label}
              {href === "/approvals" && count > 0 && (
                <span className="count" data-testid="approvals-count" aria-label={`${count} waiting`}>
                  {count}
                </span>
              )}
            </Link>
          ))}
          {me.data?.platformAdmin && (
            <Link href="/platform" aria-current={path.startsWith("/platform") ? "page" : undefined}>
              Platform
            </Link>
          )}
        </nav>
        <TeamSwitcher />
        <button className="secondary" onClick={logout}>
          Log out
        </button>
      </header>
      <main>{children}</main>
    </>
  );
}

/** Loading, error and empty states, the same everywhere. */
export function QueryState({
  q,
  empty,
  emptyText,
  children,
}: {
  q: { isPending: boolean; error: Error | null };
  empty?: boolean;
  emptyText?: string;
  children: ReactNode;
}) {
  if (q.isPending)
    return (
      <p className="muted" role="status">
        Loading…
      </p>
    );
  if (q.error) return <ErrorNote error={q.error} prefix="Could not load" />;
  if (empty) return <p className="muted empty">{emptyText ?? "Nothing here yet."}</p>;
  return <>{children}</>;
}

/** An API error, with the 422 field issues listed one per line. */
export function ErrorNote({ error, prefix }: { error: Error | null | undefined; prefix?: string }) {
  if (!error) return null;
  const issues = error instanceof ApiError ? error.issues : [];
  return (
    <div className="error" role="alert">
      {prefix ? `${prefix}: ` : ""}
      {error.message}
      {issues.length > 0 && (
        <ul className="issues">
          {issues.map((i, n) => (
            <li key={n}>
              <code>{i.path || "(body)"}</code> {i.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Wide tables scroll inside their box at phone width instead of widening the page. */
export function TableBox({ children }: { children: ReactNode }) {
  return <div className="table-box">{children}</div>;
}
