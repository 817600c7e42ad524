"use client";
import Link from "next/link";
import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, keel, when } from "@/src/ui/api";
import { ErrorNote, QueryState, Shell } from "@/src/ui/shell";
import { Approval } from "@/app/sessions/[id]/event-view";

/** The navigation's count (src/ui/shell.tsx) is under the same prefix: a decision here updates both. */
const APPROVALS_KEY = ["approvals"] as const;
const REFRESH_MS = 5_000;

export default function ApprovalsPage() {
  const qc = useQueryClient();
  const [error, setError] = useState<Error | null>(null);
  const list = useQuery({ queryKey: [...APPROVALS_KEY, "list"], queryFn: () => keel.call(api.approvals.list), refetchInterval: REFRESH_MS });
  const rows = list.data?.approvals ?? [];
  const decide = async (sessionId: string, callId: string, approve: boolean, reason?: string) => {
    setError(null);
    try {
      await keel.call(api.sessions.decide, { params: { id: sessionId, callId }, body: { approve, ...(reason ? { reason } : {}) } });
    } catch (e) {
      setError(e as Error);
    }
    await qc.invalidateQueries({ queryKey: APPROVALS_KEY });
  };
  return (
    <Shell>
      <div className="row">
        <h1>Approvals</h1>
        <span className="muted">tool calls waiting for a human, oldest first</span>
      </div>
      <ErrorNote error={error} prefix="Could not decide" />
      <QueryState q={list} empty={rows.length === 0} emptyText="Nothing is waiting for approval.">
        {list.data && list.data.total > rows.length && (
          <p className="muted">
            Showing the oldest {rows.length} of {list.data.total}.
          </p>
        )}
        {rows.map((a) => (
          <div key={`${a.runId}/${a.callId}`} className="card ev approval" data-testid="pending-approval" data-call={a.callId}>
            <div className="row">
              <Link href={`/sessions/${a.sessionId}`}>{a.sessionTitle || "Untitled session"}</Link>
              <span className="muted">{a.agentName}</span>
              <span className="muted nowrap">asked {when(a.requestedAt)}</span>
            </div>
            <Approval
              p={{ callId: a.callId, name: a.tool, arguments: a.arguments + (a.argumentsTruncated ? " …(cut; the whole call is in the session)" : "") }}
              onDecide={(callId, approve, reason) => decide(a.sessionId, callId, approve, reason)}
            />
          </div>
        ))}
      </QueryState>
    </Shell>
  );
}
