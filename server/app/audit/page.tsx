"use client";
import { useInfiniteQuery } from "@tanstack/react-query";
import { api, keel, when } from "@/src/ui/api";
import { ErrorNote, QueryState, Shell, TableBox } from "@/src/ui/shell";

type Entry = { id: string; actor: string; action: string; target: string | null; details: unknown; createdAt: string };

export default function AuditPage() {
  const log = useInfiniteQuery({
    queryKey: ["audit"],
    initialPageParam: null as string | null,
    queryFn: ({ pageParam }) => keel.call(api.audit.list, { query: { limit: "50", ...(pageParam ? { before: pageParam } : {}) } }),
    getNextPageParam: (last) => last.nextCursor,
  });
  const rows = log.data?.pages.flatMap((p) => p.entries) ?? [];
  return (
    <Shell>
      <h1>Audit log</h1>
      <QueryState q={log} empty={rows.length === 0} emptyText="No audit entries yet.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>When</th>
                <th>Who</th>
                <th>Action</th>
                <th>Target</th>
                <th>Details</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id} data-audit={e.action}>
                  <td className="muted nowrap">{when(e.createdAt)}</td>
                  <td>{e.actor}</td>
                  <td>
                    <code>{e.action}</code>
                  </td>
                  <td className="muted">{e.target?.slice(0, 12) ?? ""}</td>
                  <td className="muted small">{e.details && Object.keys(e.details).length ? JSON.stringify(e.details) : ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
        {log.hasNextPage && (
          <button className="secondary" disabled={log.isFetchingNextPage} onClick={() => void log.fetchNextPage()}>
            {log.isFetchingNextPage ? "Loading…" : "Older entries"}
          </button>
        )}
        {log.isFetchNextPageError && <ErrorNote error={log.error} prefix="Could not load more" />}
      </QueryState>
    </Shell>
  );
}
