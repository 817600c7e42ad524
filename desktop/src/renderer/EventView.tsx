// One stored log event, as the dashboard shows it: messages, collapsible reasoning, tool calls
// with arguments and result state, approval requests with Approve / Deny (with a reason).
import { useState } from "react";
import type { KeelEvent } from "../shared/contract.ts";
import { reasoningText } from "@keel/core/agent/reasoning";

type Decide = (d: { callId: string; approve: boolean; reason?: string }) => void;

function pretty(text: unknown): string {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function EventView({ e, decision, results, busy, onDecide }: { e: KeelEvent; decision: string | null; results: Map<string, any>; busy: boolean; onDecide: Decide }) {
  const p = e.payload ?? {};
  const common = { "data-seq": e.seq, "data-type": e.type };
  switch (e.type) {
    case "user_message":
      return (
        <div {...common} className="ev user">
          <span className="who">User</span>
          {typeof p.content === "string" ? p.content : (p.content ?? []).map((c: { text?: string }) => c.text).join("\n")}
        </div>
      );
    case "assistant_message": {
      const m = p.message ?? {};
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
          {(m.tool_calls ?? []).map((c: { id: string; function?: { name?: string; arguments?: string } }) => (
            <div key={c.id} className="toolcall" data-call={c.id}>
              <code>{c.function?.name}</code> <span className="badge">{results.get(c.id)?.state ?? "requested"}</span>
              <pre>{pretty(c.function?.arguments ?? "")}</pre>
            </div>
          ))}
        </div>
      );
    }
    case "tool_result":
      return (
        <div {...common} className={`ev tool ${p.isError ? "failed" : ""}`}>
          <span className="who">Result</span> <code>{p.name}</code> <span className={`badge st-${p.state}`}>{p.state}</span>
          <pre>{String(p.content ?? "").slice(0, 4000)}</pre>
        </div>
      );
    case "approval_requested":
      return (
        <div {...common} className="ev approval">
          <Approval callId={String(p.callId)} name={p.name} args={p.arguments} decision={decision} busy={busy} onDecide={onDecide} />
        </div>
      );
    case "approval_decided":
      return (
        <div {...common} className="ev muted small">
          {p.decision === "approved" ? "Approved" : "Denied"}
          {p.decidedBy ? ` by ${p.decidedBy}` : ""}
          {p.reason ? `: ${p.reason}` : ""}
        </div>
      );
    case "model_error":
    case "run_failed":
      return (
        <div {...common} className="ev failed">
          <span className="who">{e.type.replace("_", " ")}</span>
          {p.message ?? p.error ?? JSON.stringify(p)}
        </div>
      );
    default:
      return (
        <div {...common} className="ev muted small">
          {e.type}: {JSON.stringify(p).slice(0, 300)}
        </div>
      );
  }
}

function Approval({ callId, name, args, decision, busy, onDecide }: { callId: string; name: string; args: string; decision: string | null; busy: boolean; onDecide: Decide }) {
  const [denying, setDenying] = useState(false);
  const [reason, setReason] = useState("");
  return (
    <>
      <div className="row">
        <strong>{decision ? "Approval" : "Approval needed"}</strong> <code>{name}</code>
        {decision && <span className={`badge ${decision === "approved" ? "ok" : "bad"}`}>{decision}</span>}
      </div>
      <pre>{pretty(args)}</pre>
      {decision ? null : denying ? (
        <div className="row">
          <input aria-label="deny reason" value={reason} onChange={(e) => setReason(e.target.value)} placeholder="reason (the model sees it)" maxLength={2000} />
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
