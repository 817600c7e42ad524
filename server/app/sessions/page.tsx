"use client";
import Link from "next/link";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "@/src/ui/api";
import { QueryState, Shell } from "@/src/ui/shell";

type Session = { id: string; agentName: string; title: string | null; status: string; lastSeq: string; createdAt: string; activeRun: { status: string } | null };
type Page = { sessions: Session[]; nextCursor: string | null };

export default function SessionsPage() {
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const list = useInfiniteQuery({
    queryKey: ["sessions", q, status],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => {
      const p = new URLSearchParams({ limit: "50" });
      if (pageParam) p.set("cursor", pageParam);
      if (q) p.set("q", q);
      if (status) p.set("status", status);
      return api<Page>(`/api/v1/sessions?${p}`);
    },
    getNextPageParam: (last) => last.nextCursor,
  });
  const rows = list.data?.pages.flatMap((p) => p.sessions) ?? [];
  return (
    <Shell>
      <h1>Sessions</h1>
      <div className="row">
        <input placeholder="search title or id" value={q} onChange={(e) => setQ(e.target.value)} />
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="status">
          <option value="">all</option><option value="active">active</option><option value="idle">idle</option><option value="archived">archived</option>
        </select>
      </div>
      <QueryState q={list} empty={rows.length === 0}>
        <table>
          <thead><tr><th>Session</th><th>Agent</th><th>State</th><th>Events</th><th>Created</th></tr></thead>
          <tbody>
            {rows.map((s) => (
              <tr key={s.id}>
                <td><Link href={`/sessions/${s.id}`}>{s.title || s.id.slice(0, 8)}</Link></td>
                <td>{s.agentName}</td><td>{s.activeRun?.status ?? s.status}</td><td>{s.lastSeq}</td>
                <td className="muted">{new Date(s.createdAt).toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.hasNextPage && <button className="secondary" onClick={() => void list.fetchNextPage()}>More</button>}
      </QueryState>
    </Shell>
  );
}
