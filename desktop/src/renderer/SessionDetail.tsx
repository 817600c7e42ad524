// One session: its stored log (every event once, seq order), then live through a follow that
// main resumes with Last-Event-ID after a drop. Token, reasoning and tool-call deltas show while the
// model writes and are replaced by the stored assistant message. Pending tool calls can be approved or
// denied; a message can be posted (a busy session's refusal shows the server's code, session_busy).
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { FollowState, KeelConnection, KeelEvent } from "../shared/contract.ts";
import { api, call } from "./api.ts";
import { EventView } from "./EventView.tsx";
import { ErrorBox, Loading } from "./ui.tsx";
import { applyDelta, EMPTY_DRAFT, isEmptyDraft, sessionView, type Draft } from "@keel/core/view/session";

export function SessionDetail({ context, conn, sessionId }: { context: string; conn: KeelConnection; sessionId: string }) {
  const history = useQuery({
    queryKey: [context, "session", conn.id, sessionId],
    queryFn: () => call("sessions:history", { connection: conn.id, sessionId }),
    staleTime: Infinity,
  });
  const [live, setLive] = useState<KeelEvent[]>([]);
  const [draft, setDraft] = useState<Draft>(EMPTY_DRAFT);
  const [follow, setFollow] = useState<FollowState | null>(null);
  const lastSeq = useRef(0n);
  const qc = useQueryClient();

  const loaded = history.data;
  useEffect(() => {
    if (!loaded) return;
    lastSeq.current = BigInt(loaded.events.at(-1)?.seq ?? "0");
    let followId: string | null = null;
    let stopped = false;
    // Filter by session, dedupe by seq: events may arrive before follow() answers with its id.
    const offEvent = api.on("sessions:event", (e) => {
      if (e.sessionId !== sessionId || BigInt(e.event.seq) <= lastSeq.current) return;
      lastSeq.current = BigInt(e.event.seq);
      if (e.event.type === "assistant_message") setDraft(EMPTY_DRAFT);
      setLive((l) => [...l, e.event]);
      // The list shows event counts and run states: refresh it now rather than at its next poll.
      void qc.invalidateQueries({ queryKey: [context, "sessions", conn.id] });
    });
    const offDelta = api.on("sessions:delta", (d) => d.sessionId === sessionId && setDraft((t) => applyDelta(t, d.delta)));
    const offState = api.on("sessions:follow:state", (s) => s.sessionId === sessionId && (followId === null || s.followId === followId) && setFollow(s));
    void call("sessions:follow", { connection: conn.id, sessionId, after: String(lastSeq.current) }).then(
      (r) => {
        followId = r.followId;
        if (stopped) void call("sessions:unfollow", { followId });
      },
      (err: Error) => setFollow({ followId: "", sessionId, state: "closed", lastSeq: String(lastSeq.current), error: err.message }),
    );
    return () => {
      stopped = true;
      offEvent();
      offDelta();
      offState();
      if (followId) void call("sessions:unfollow", { followId });
    };
  }, [loaded, conn.id, sessionId, context, qc]);

  const decide = useMutation({
    mutationFn: (d: { callId: string; approve: boolean; reason?: string }) => call("sessions:decide", { connection: conn.id, sessionId, ...d }),
  });
  const [onBusy, setOnBusy] = useState<"enqueue" | "reject" | "interrupt">("enqueue");
  const post = useMutation({
    mutationFn: (content: string) => call("sessions:post", { connection: conn.id, sessionId, content, onBusy }),
  });
  const send = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const content = String(new FormData(form).get("content") ?? "").trim();
    if (content) post.mutate(content, { onSuccess: () => form.reset() });
  };
  const events = useMemo(() => [...(history.data?.events ?? []), ...live], [history.data, live]);
  const view = useMemo(() => sessionView(events), [events]);

  if (history.isPending) return <Loading what="session history" />;
  if (history.isError) return <ErrorBox title="Cannot load the session" error={history.error} />;
  const s = history.data.session;
  return (
    <section className="card session" data-session={sessionId}>
      <div className="row">
        <h2 className="title">{s.title || "(untitled)"}</h2>
        <span className="muted small">
          {s.agentName} v{s.agentVersion}
        </span>
        <span className={`badge follow-${follow?.state ?? "connecting"}`} data-testid="follow-state" title={follow?.error ?? ""}>
          {follow?.state ?? "connecting"}
        </span>
      </div>
      {follow?.state === "closed" && follow.error && <ErrorBox title="Live updates stopped" error={new Error(follow.error)} />}
      {decide.isError && <ErrorBox title="Decision not recorded" error={decide.error} />}
      <div className="log">
        {events.length === 0 ? (
          <p className="state muted">No events yet: post a message to this session from the dashboard or the API.</p>
        ) : (
          view.events.map((e) => <EventView key={e.seq} e={e} view={view} busy={decide.isPending} onDecide={(d) => decide.mutate(d)} />)
        )}
        {!isEmptyDraft(draft) && (
          <div className="ev assistant draft" data-testid="draft">
            <span className="who">Agent (writing)</span>
            {draft.reasoning && (
              <details className="reasoning" open data-testid="draft-reasoning">
                <summary className="muted">Reasoning…</summary>
                <div className="muted">{draft.reasoning}</div>
              </details>
            )}
            {draft.content}
            {draft.tools && <pre data-testid="draft-tools">{draft.tools}</pre>}
          </div>
        )}
      </div>
      <form className="composer row" onSubmit={send}>
        <textarea name="content" rows={2} aria-label="message" placeholder="Message" maxLength={256 * 1024} />
        <select aria-label="if busy" value={onBusy} onChange={(e) => setOnBusy(e.target.value as typeof onBusy)} title="What happens if a run is in progress">
          <option value="enqueue">if busy: queue</option>
          <option value="interrupt">if busy: interrupt</option>
          <option value="reject">if busy: reject</option>
        </select>
        <button disabled={post.isPending}>{post.isPending ? "Sending…" : "Send"}</button>
      </form>
      {post.isError && <ErrorBox title="Message not sent" error={post.error} />}
    </section>
  );
}
