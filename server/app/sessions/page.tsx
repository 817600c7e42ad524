"use client";
import Link from "next/link";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useDeferredValue, useState } from "react";
import { api, keel, when } from "@/src/ui/api";
import { ErrorNote, QueryState, Shell, TableBox } from "@/src/ui/shell";

type Session = {
  id: string;
  agentName: string;
  title: string | null;
  status: string;
  lastSeq: string;
  createdAt: string;
  activeRun: { status: string; nextAttemptAt: string | null } | null;
};
type Page = { sessions: Session[]; nextCursor: string | null };

export default function SessionsPage() {
  const [search, setSearch] = useState("");
  const q = useDeferredValue(search.trim());
  const [status, setStatus] = useState("");
  const [agentId, setAgentId] = useState("");
  const agents = useQuery({ queryKey: ["agents"], queryFn: () => keel.call(api.agents.list) });
  const list = useInfiniteQuery({
    queryKey: ["sessions", q, status, agentId],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => {
      const query = {
        limit: "25",
        cursor: pageParam ?? undefined,
        q: q || undefined,
        status: (status || undefined) as "active" | "idle" | "archived" | undefined,
        agentId: agentId || undefined,
      };
      return keel.call(api.sessions.list, { query });
    },
    getNextPageParam: (last) => last.nextCursor,
    refetchInterval: 10_000,
  });
  const rows = list.data?.pages.flatMap((p) => p.sessions) ?? [];
  const filtered = Boolean(q || status || agentId);
  return (
    <Shell>
      <h1>Sessions</h1>
      <div className="row filters">
        <input type="search" placeholder="search title or id" value={search} onChange={(e) => setSearch(e.target.value)} aria-label="search" />
        <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label="status">
          <option value="">any status</option>
          <option value="active">active</option>
          <option value="idle">idle</option>
          <option value="archived">archived</option>
        </select>
        <select value={agentId} onChange={(e) => setAgentId(e.target.value)} aria-label="agent">
          <option value="">any agent</option>
          {agents.data?.agents.map((a) => (
            <option key={a.id} value={a.id}>
              {a.name}
            </option>
          ))}
        </select>
      </div>
      <QueryState q={list} empty={rows.length === 0} emptyText={filtered ? "No session matches these filters." : "No sessions yet: start one from an agent."}>
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Session</th>
                <th>Agent</th>
                <th>State</th>
                <th>Events</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.id}>
                  <td>
                    <Link href={`/sessions/${s.id}`}>{s.title || s.id.slice(0, 8)}</Link>
                  </td>
                  <td>{s.agentName}</td>
                  <td>
                    <span className={`badge ${s.activeRun?.nextAttemptAt ? "retrying" : (s.activeRun?.status ?? s.status)}`}>
                      {s.activeRun?.nextAttemptAt ? "retrying" : (s.activeRun?.status.replace("_", " ") ?? s.status)}
                    </span>
                  </td>
                  <td>{s.lastSeq}</td>
                  <td className="muted">{when(s.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
        {list.hasNextPage && (
          <button className="secondary" disabled={list.isFetchingNextPage} onClick={() => void list.fetchNextPage()}>
            {list.isFetchingNextPage ? "Loading…" : "Load more"}
          </button>
        )}
        {list.isFetchNextPageError && <ErrorNote error={list.error} prefix="Could not load more" />}
      </QueryState>
    </Shell>
  );
}
