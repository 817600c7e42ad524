"use client";
import { use, useEffect, useState, type FormEvent } from "react";
import { api } from "@/src/ui/api";
import { Shell } from "@/src/ui/shell";
import { EventView, type LogEvent } from "./event-view";

/** Live session: the log over SSE (EventSource resumes with Last-Event-ID by itself) plus token deltas. */
export default function SessionPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  const [events, setEvents] = useState<LogEvent[]>([]);
  const [live, setLive] = useState("");
  const [conn, setConn] = useState<"connecting" | "live" | "reconnecting">("connecting");
  const [error, setError] = useState<string | null>(null);
  const [onBusy, setOnBusy] = useState("enqueue");

  useEffect(() => {
    const es = new EventSource(`/api/v1/sessions/${id}/stream`);
    const seen = new Set<string>();
    es.onopen = () => setConn("live");
    es.onerror = () => setConn("reconnecting");
    es.addEventListener("delta", (m) => {
      const d = JSON.parse(m.data).delta as { content?: string };
      if (d.content) setLive((s) => s + d.content);
    });
    const onEvent = (m: MessageEvent) => {
      if (seen.has(m.lastEventId)) return;
      seen.add(m.lastEventId);
      if (m.type === "assistant_message") setLive("");
      setEvents((evs) => [...evs, { seq: m.lastEventId, type: m.type, payload: JSON.parse(m.data) }]);
    };
    for (const t of ["user_message", "assistant_message", "tool_result", "approval_requested", "approval_decided", "model_error", "run_failed", "run_cancelled", "run_interrupted", "context_repaired"]) es.addEventListener(t, onEvent);
    return () => es.close();
  }, [id]);

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    await fn().catch((e: Error) => setError(e.message));
  };
  const send = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const content = String(new FormData(form).get("content") ?? "");
    if (!content.trim()) return;
    void act(async () => {
      await api(`/api/v1/sessions/${id}/messages`, { method: "POST", body: { content, onBusy } });
      form.reset();
    });
  };
  const decide = (callId: string, approve: boolean) => act(() => api(`/api/v1/sessions/${id}/approvals/${encodeURIComponent(callId)}`, { method: "POST", body: { approve } }));

  return (
    <Shell>
      <div className="row"><h1>Session</h1><span className="muted">{id} · {conn}</span>
        <button className="secondary" onClick={() => void act(() => api(`/api/v1/sessions/${id}/cancel`, { method: "POST", body: {} }))}>Cancel run</button>
      </div>
      <div className="log">
        {events.length === 0 && conn === "connecting" && <p className="muted" role="status">Loading…</p>}
        {events.length === 0 && conn !== "connecting" && <p className="muted">No messages yet: say something.</p>}
        {events.map((e) => <EventView key={e.seq} e={e} onDecide={decide} />)}
        {live && <div className="card ev" aria-live="polite">{live}▍</div>}
      </div>
      <form className="row" onSubmit={send}>
        <input name="content" placeholder="Message" style={{ flex: 1, minWidth: 200 }} />
        <select value={onBusy} onChange={(e) => setOnBusy(e.target.value)} aria-label="if busy">
          <option value="enqueue">if busy: queue</option><option value="interrupt">if busy: interrupt</option><option value="reject">if busy: reject</option>
        </select>
        <button>Send</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
    </Shell>
  );
}
