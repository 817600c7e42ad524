"use client";
// One log event as the dashboard shows it. What it shows (each call's state, decisions, reasoning,
// unknown events) comes from @keel/core/view/session, which the desktop app uses too.
import { useState } from "react";
import {
  CALL_STATE_LABELS,
  prettyArguments,
  reasoningText,
  unknownEventText,
  userText,
  type Decision,
  type SessionView,
  type ViewEvent,
} from "@keel/core/view/session";

type OnDecide = (callId: string, approve: boolean, reason?: string) => Promise<void>;

function Args({ text }: { text: string }) {
  return <pre className="args">{prettyArguments(text)}</pre>;
}

/** One log event: messages, collapsible reasoning, tool calls with arguments, results and state, approvals. */
export function EventView({ e, view, onDecide }: { e: ViewEvent; view: SessionView; onDecide: OnDecide }) {
  const common = { "data-seq": e.seq, "data-type": e.type };
  if (!e.known)
    return (
      <div {...common} className="card ev muted small" data-unknown={e.reason}>
        {unknownEventText(e)}
      </div>
    );
  switch (e.type) {
    case "user_message":
      return (
        <div {...common} className="card ev user">
          <span className="who">You</span>
          {userText(e.payload)}
        </div>
      );
    case "assistant_message": {
      const m = e.payload.message;
      const reasoning = reasoningText(m);
      return (
        <div {...common} className="card ev assistant">
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
              <div className="row">
                <code>{c.name}</code>
                <span className={`badge ${c.state}`}>{CALL_STATE_LABELS[c.state]}</span>
              </div>
              <Args text={c.arguments} />
            </div>
          ))}
        </div>
      );
    }
    case "tool_result": {
      const p = e.payload;
      return (
        <div {...common} className={`card ev tool ${p.isError ? "failed" : ""}`}>
          <div className="row">
            <span className="who">Result</span>
            <code>{p.name}</code>
            <span className={`badge ${p.state}`}>{p.state}</span>
          </div>
          <pre className="args">{p.content.slice(0, 4000)}</pre>
        </div>
      );
    }
    case "approval_requested":
      return (
        <div {...common} className="card ev approval">
          <Approval p={e.payload} decided={view.decisions.get(e.seq)} onDecide={onDecide} />
        </div>
      );
    case "approval_decided": {
      const p = e.payload;
      return (
        <div {...common} className="card ev muted small">
          {p.decision === "approved" ? "Approved" : "Denied"}
          {p.decidedBy ? ` by ${p.decidedBy}` : ""}
          {p.reason ? `: ${p.reason}` : ""}
        </div>
      );
    }
    case "model_error":
    case "run_failed":
      return (
        <div {...common} className="card ev failed">
          <span className="who">{e.type.replace("_", " ")}</span>
          {e.payload.message}
        </div>
      );
    case "run_retrying": {
      const p = e.payload;
      return (
        <div {...common} className="card ev failed small" data-testid="retrying">
          Attempt {p.attempt} of {p.maxAttempts} failed ({p.code}): {p.message}. Next attempt at {new Date(p.nextAttemptAt).toLocaleTimeString()}.
        </div>
      );
    }
    case "context_repaired":
      return (
        <div {...common} className="card ev muted small">
          Context repaired before the next step: {e.payload.repairs.map((r) => `${r.kind.replaceAll("_", " ")} (${r.detail})`).join("; ")}
        </div>
      );
    case "run_cancelled":
    case "run_interrupted":
      return (
        <div {...common} className="card ev muted small">
          {e.type === "run_cancelled" ? "Run cancelled" : "Run interrupted by a newer message"}
        </div>
      );
    default: {
      const never: never = e;
      return never;
    }
  }
}

export function Approval({ p, decided, onDecide }: { p: { callId: string; name: string; arguments: string }; decided?: Decision; onDecide: OnDecide }) {
  const [denying, setDenying] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const decide = async (approve: boolean) => {
    setBusy(true);
    await onDecide(p.callId, approve, approve ? undefined : reason.trim() || undefined).finally(() => setBusy(false));
  };
  return (
    <>
      <div className="row">
        <strong>Approval needed</strong>
        <code>{p.name}</code>
      </div>
      <Args text={p.arguments} />
      {decided ? (
        <p className="muted">
          {decided.decision === "approved" ? "Approved" : "Denied"}
          {decided.reason ? `: ${decided.reason}` : ""}
        </p>
      ) : denying ? (
        <div className="row">
          <input
            value={reason}
            onChange={(e) => setReason(e.target.value)}
            placeholder="reason (the model sees it)"
            aria-label="deny reason"
            maxLength={2000}
          />
          <button className="danger" disabled={busy} onClick={() => void decide(false)}>
            Deny
          </button>
          <button className="secondary" disabled={busy} onClick={() => setDenying(false)}>
            Back
          </button>
        </div>
      ) : (
        <div className="row">
          <button disabled={busy} onClick={() => void decide(true)}>
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
