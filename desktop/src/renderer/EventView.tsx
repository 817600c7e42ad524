// One stored log event, as the dashboard shows it: messages, collapsible reasoning, tool calls
// with arguments and state, approval requests with Approve / Deny (with a reason). Call states,
// decisions, reasoning and unknown events come from @keel/core/view/session, as in the dashboard.
import { useState } from "react";
import { CALL_STATE_LABELS, prettyArguments, reasoningText, unknownEventText, userText, type SessionView, type ViewEvent } from "@keel/core/view/session";

type Decide = (d: { callId: string; approve: boolean; reason?: string }) => void;

export function EventView({ e, view, busy, onDecide }: { e: ViewEvent; view: SessionView; busy: boolean; onDecide: Decide }) {
  const common = { "data-seq": e.seq, "data-type": e.type };
  if (!e.known) {
    return (
      <div {...common} className="ev muted small" data-unknown={e.reason}>
        {unknownEventText(e)}
      </div>
    );
  }
  switch (e.type) {
    case "user_message":
      return (
        <div {...common} className="ev user">
          <span className="who">User</span>
          {userText(e.payload)}
        </div>
      );
    case "assistant_message": {
      const m = e.payload.message;
      const reasoning = reasoningText(m);
      return (
        <div {...common} className="ev assistant">
          <span className="who">Agent</span>
          {reasoning && (
            <details className="reasoning">
              <summary className="muted">Reasoning</summary>
              <div className="muted">{reasoning}</div>
            </details>
          )}
          {m.content && <div className="content">{m.content}</div>}
          {(view.calls.get(e.seq) ?? []).map((c) => (
            <div key={c.id} className="toolcall" data-call={c.id} data-state={c.state}>
              <code>{c.name}</code> <span className={`badge st-${c.state}`}>{CALL_STATE_LABELS[c.state]}</span>
              <pre>{prettyArguments(c.arguments)}</pre>
            </div>
          ))}
        </div>
      );
    }
    case "tool_result": {
      const p = e.payload;
      return (
        <div {...common} className={`ev tool ${p.isError ? "failed" : ""}`}>
          <span className="who">Result</span> <code>{p.name}</code> <span className={`badge st-${p.state}`}>{p.state}</span>
          <pre>{p.content.slice(0, 4000)}</pre>
        </div>
      );
    }
    case "approval_requested": {
      const p = e.payload;
      return (
        <div {...common} className="ev approval">
          <Approval callId={p.callId} name={p.name} args={p.arguments} decision={view.decisions.get(e.seq)?.decision ?? null} busy={busy} onDecide={onDecide} />
        </div>
      );
    }
    case "approval_decided": {
      const p = e.payload;
      return (
        <div {...common} className="ev muted small">
          {p.decision === "approved" ? "Approved" : "Denied"}
          {p.decidedBy ? ` by ${p.decidedBy}` : ""}
          {p.reason ? `: ${p.reason}` : ""}
        </div>
      );
    }
    case "model_error":
    case "run_failed":
      return (
        <div {...common} className="ev failed">
          <span className="who">{e.type.replace("_", " ")}</span>
          {e.payload.message}
        </div>
      );
    case "run_retrying": {
      const p = e.payload;
      return (
        <div {...common} className="ev failed small">
          Attempt {p.attempt} of {p.maxAttempts} failed ({p.code}): {p.message}. Next attempt at {new Date(p.nextAttemptAt).toLocaleTimeString()}.
        </div>
      );
    }
    case "context_repaired":
      return (
        <div {...common} className="ev muted small">
          Context repaired before the next step: {e.payload.repairs.map((r) => `${r.kind.replaceAll("_", " ")} (${r.detail})`).join("; ")}
        </div>
      );
    case "run_cancelled":
    case "run_interrupted":
      return (
        <div {...common} className="ev muted small">
          {e.type === "run_cancelled" ? "Run cancelled" : "Run interrupted by a newer message"}
        </div>
      );
    default: {
      const never: never = e;
      return never;
    }
  }
}

function Approval({
  callId,
  name,
  args,
  decision,
  busy,
  onDecide,
}: {
  callId: string;
  name: string;
  args: string;
  decision: string | null;
  busy: boolean;
  onDecide: Decide;
}) {
  const [denying, setDenying] = useState(false);
  const [reason, setReason] = useState("");
  return (
    <>
      <div className="row">
        <strong>{decision ? "Approval" : "Approval needed"}</strong> <code>{name}</code>
        {decision && <span className={`badge ${decision === "approved" ? "ok" : "bad"}`}>{decision}</span>}
      </div>
      <pre>{prettyArguments(args)}</pre>
      {decision ? null : denying ? (
        <div className="row">
          <input
            aria-label="deny reason"
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            placeholder="reason (the model sees it)"
            maxLength={2000}
          />
          <button className="danger" disabled={busy} onClick={() => onDecide({ callId, approve: false, ...(reason.trim() ? { reason: reason.trim() } : {}) })}>
            Deny
          </button>
          <button className="secondary" onClick={() => setDenying(false)}>
            Back
          </button>
        </div>
      ) : (
        <div className="row">
          <button disabled={busy} onClick={() => onDecide({ callId, approve: true })}>
            Approve
          </button>
          <button className="secondary" disabled={busy} onClick={() => setDenying(true)}>
            Deny…
          </button>
        </div>
      )}
    </>
  );
}
