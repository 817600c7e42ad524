"use client";
import Link from "next/link";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { use, useEffect, useMemo, useState, type FormEvent } from "react";
import { api, keel } from "@/src/ui/api";
import { useSessionLog } from "@/src/ui/session-log";
import { ErrorNote, Shell } from "@/src/ui/shell";
import { sessionView } from "@keel/core/view/session";
import { EventView } from "./event-view";
import { SandboxPanel } from "./sandbox-panel";

type Row = {
  id: string;
  agentName: string;
  title: string | null;
  status: string;
  activeRun: { id: string; status: string; attempt: number; maxAttempts: number; nextAttemptAt: string | null } | null;
};

/** A queued run that already failed an attempt is retrying, not idle or freshly queued. */
function runState(run: Row["activeRun"]): string {
  if (!run) return "idle";
  if (run.status === "queued" && run.nextAttemptAt)
    return `retrying: attempt ${run.attempt + 1} of ${run.maxAttempts} at ${new Date(run.nextAttemptAt).toLocaleTimeString()}`;
  return run.status.replace("_", " ");
}

/** Live session: the stored log over SSE plus the token deltas of the model call in progress. */
export default function SessionPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  const qc = useQueryClient();
  const { events, live, conn } = useSessionLog(id);
  const [error, setError] = useState<Error | null>(null);
  const [onBusy, setOnBusy] = useState<"enqueue" | "reject" | "interrupt">("enqueue");
  const [sending, setSending] = useState(false);
  // The session with the run in progress; refreshed as events arrive.
  const info = useQuery({ queryKey: ["session", id], queryFn: () => keel.call(api.sessions.get, { params: { id } }) });
  useEffect(() => void qc.invalidateQueries({ queryKey: ["session", id] }), [qc, id, events.length]);
  const view = useMemo(() => sessionView(events), [events]);
  const run = info.data?.activeRun ?? null;

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e as Error);
    }
    void qc.invalidateQueries({ queryKey: ["session", id] });
  };
  const send = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const content = String(new FormData(form).get("content") ?? "");
    if (!content.trim()) return;
    setSending(true);
    void act(async () => {
      await keel.call(api.sessions.messages, { params: { id }, body: { content, onBusy } });
      form.reset();
    }).finally(() => setSending(false));
  };
  const decide = (callId: string, approve: boolean, reason?: string) =>
    act(() => keel.call(api.sessions.decide, { params: { id, callId }, body: { approve, ...(reason ? { reason } : {}) } }));

  return (
    <Shell>
      <p>
        <Link href="/sessions">← Sessions</Link>
      </p>
      <div className="row session-head">
        <h1>{info.data?.title || "Session"}</h1>
        <span className="muted">{info.data?.agentName ?? ""}</span>
        <span className={`badge ${run?.nextAttemptAt ? "retrying" : (run?.status ?? "idle")}`} data-testid="run-state">
          {run || !info.isPending ? runState(run) : "…"}
        </span>
        <span className={`conn ${conn}`} role="status" data-testid="conn">
          {conn}
        </span>
        <button className="secondary" disabled={!run} onClick={() => void act(() => keel.call(api.sessions.cancel, { params: { id } }))}>
          Cancel run
        </button>
      </div>
      {info.isError && <ErrorNote error={info.error} prefix="Could not load the session" />}
      {info.data === null && (
        <p className="error" role="alert">
          No such session.
        </p>
      )}
      <div className="log" data-testid="log">
        {events.length === 0 && conn === "connecting" && (
          <p className="muted" role="status">
            Loading…
          </p>
        )}
        {events.length === 0 && conn !== "connecting" && <p className="muted empty">No messages yet: say something.</p>}
        {view.events.map((e) => (
          <EventView key={e.seq} e={e} view={view} onDecide={decide} />
        ))}
        {(live.content || live.reasoning || live.tools) && (
          <div className="card ev assistant streaming" aria-live="polite" data-testid="live">
            <span className="who">Agent</span>
            {live.reasoning && (
              <details className="reasoning">
                <summary className="muted">Reasoning…</summary>
                <div className="muted">{live.reasoning}</div>
              </details>
            )}
            {live.content}
            {live.tools && <pre className="args">{live.tools}</pre>}
            <span className="cursor">▍</span>
          </div>
        )}
      </div>
      <form className="composer" onSubmit={send}>
        <textarea
          name="content"
          placeholder="Message"
          rows={2}
          aria-label="message"
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) {
              e.preventDefault();
              e.currentTarget.form?.requestSubmit();
            }
          }}
        />
        <div className="row">
          <select value={onBusy} onChange={(e) => setOnBusy(e.target.value as typeof onBusy)} aria-label="if busy" title="What happens if a run is in progress">
            <option value="enqueue">if busy: queue</option>
            <option value="interrupt">if busy: interrupt</option>
            <option value="reject">if busy: reject</option>
          </select>
          <button disabled={sending}>{sending ? "Sending…" : "Send"}</button>
        </div>
      </form>
      <ErrorNote error={error} />
      {info.data !== null && <SandboxPanel sessionId={id} version={events.length} />}
    </Shell>
  );
}
