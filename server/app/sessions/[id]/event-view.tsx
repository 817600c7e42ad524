"use client";
import { useState } from "react";
import type { LogEvent } from "@/src/ui/session-log";
import { reasoningText } from "@keel/core/agent/reasoning";

type Decision = { decision: string; reason: string | null; decidedBy: string | null };
type Result = { state: string; isError: boolean; content: string };
/** What later events say about each tool call, so a call shows its state where it was made. */
export type CallIndex = { results: Map<string, Result>; decisions: Map<string, Decision>; asked: Set<string> };

export function indexCalls(events: LogEvent[]): CallIndex {
  const ix: CallIndex = { results: new Map(), decisions: new Map(), asked: new Set() };
  for (const e of events) {
    if (e.type === "tool_result") ix.results.set(e.payload.tool_call_id, e.payload);
    else if (e.type === "approval_decided") ix.decisions.set(e.payload.callId, e.payload);
    else if (e.type === "approval_requested") ix.asked.add(e.payload.callId);
  }
  return ix;
}

function callState(ix: CallIndex, id: string, runActive: boolean): string {
  const r = ix.results.get(id);
  if (r) return r.state;
  const d = ix.decisions.get(id);
  if (d?.decision === "denied") return "denied";
  if (ix.asked.has(id) && !d) return "awaiting approval";
  return runActive ? "running" : "pending";
}

function Args({ text }: { text: string }) {
  let pretty = text;
  try {
    pretty = JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    /* shown as sent */
  }
  return <pre className="args">{pretty}</pre>;
}

/** One log event: messages, collapsible reasoning, tool calls with arguments, results and state, approvals. */
export function EventView({ e, ix, runActive, onDecide }: { e: LogEvent; ix: CallIndex; runActive: boolean; onDecide: (callId: string, approve: boolean, reason?: string) => Promise<void> }) {
  const p = e.payload;
  const common = { "data-seq": e.seq, "data-type": e.type };
  switch (e.type) {
    case "user_message":
      return <div {...common} className="card ev user"><span className="who">You</span>{typeof p.content === "string" ? p.content : (p.content ?? []).map((c: { text?: string }) => c.text).join("\n")}</div>;
    case "assistant_message": {
      const m = p.message ?? {};
      const reasoning = reasoningText(m);
      return (
        <div {...common} className="card ev assistant">
          <span className="who">Agent</span>
          {reasoning && <details className="reasoning"><summary className="muted">Reasoning</summary><div className="muted">{reasoning}</div></details>}
          {m.content && <div className="content">{m.content}</div>}
          {(m.tool_calls ?? []).map((c: { id: string; function?: { name?: string; arguments?: string } }) => {
            const state = callState(ix, c.id, runActive);
            return (
              <div key={c.id} className="toolcall" data-call={c.id}>
                <div className="row"><code>{c.function?.name}</code><span className={`badge ${state.replace(" ", "_")}`}>{state}</span></div>
                <Args text={c.function?.arguments ?? ""} />
              </div>
            );
          })}
        </div>
      );
    }
    case "tool_result":
      return (
        <div {...common} className={`card ev tool ${p.isError ? "failed" : ""}`}>
          <div className="row"><span className="who">Result</span><code>{p.name}</code><span className={`badge ${p.state}`}>{p.state}</span></div>
          <pre className="args">{String(p.content).slice(0, 4000)}</pre>
        </div>
      );
    case "approval_requested":
      return <div {...common} className="card ev approval"><Approval p={p} decided={ix.decisions.get(p.callId)} onDecide={onDecide} /></div>;
    case "approval_decided":
      return <div {...common} className="card ev muted small">{p.decision === "approved" ? "Approved" : "Denied"}{p.decidedBy ? ` by ${p.decidedBy}` : ""}{p.reason ? `: ${p.reason}` : ""}</div>;
    case "model_error":
    case "run_failed":
      return <div {...common} className="card ev failed"><span className="who">{e.type.replace("_", " ")}</span>{p.message ?? p.error ?? JSON.stringify(p)}</div>;
    case "run_retrying":
      return (
        <div {...common} className="card ev failed small" data-testid="retrying">
          Attempt {p.attempt} of {p.maxAttempts} failed ({p.code}): {p.message}. Next attempt at {new Date(p.nextAttemptAt).toLocaleTimeString()}.
        </div>
      );
    case "context_repaired":
      return (
        <div {...common} className="card ev muted small">
          Context repaired before the next step:{" "}
          {(p.repairs ?? []).map((r: { kind: string; detail: string }) => `${r.kind.replaceAll("_", " ")} (${r.detail})`).join("; ")}
        </div>
      );
    case "run_cancelled":
    case "run_interrupted":
      return <div {...common} className="card ev muted small">{e.type === "run_cancelled" ? "Run cancelled" : "Run interrupted by a newer message"}</div>;
    default:
      return <div {...common} className="card ev muted small">{e.type}: {JSON.stringify(p).slice(0, 500)}</div>;
  }
}

function Approval({ p, decided, onDecide }: { p: { callId: string; name: string; arguments: string }; decided?: Decision; onDecide: (callId: string, approve: boolean, reason?: string) => Promise<void> }) {
  const [denying, setDenying] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const decide = async (approve: boolean) => {
    setBusy(true);
    await onDecide(p.callId, approve, approve ? undefined : reason.trim() || undefined).finally(() => setBusy(false));
  };
  return (
    <>
      <div className="row"><strong>Approval needed</strong><code>{p.name}</code></div>
      <Args text={p.arguments} />
      {decided ? (
        <p className="muted">{decided.decision === "approved" ? "Approved" : "Denied"}{decided.reason ? `: ${decided.reason}` : ""}</p>
      ) : denying ? (
        <div className="row">
          <input value={reason} onChange={(e) => setReason(e.target.value)} placeholder="reason (the model sees it)" aria-label="deny reason" maxLength={2000} />
          <button className="danger" disabled={busy} onClick={() => void decide(false)}>Deny</button>
          <button className="secondary" disabled={busy} onClick={() => setDenying(false)}>Back</button>
        </div>
      ) : (
        <div className="row">
          <button disabled={busy} onClick={() => void decide(true)}>Approve</button>
          <button className="secondary" disabled={busy} onClick={() => setDenying(true)}>Deny…</button>
        </div>
      )}
    </>
  );
}
