"use client";

export type LogEvent = { seq: string; type: string; payload: any };

/** One log event: messages, collapsible reasoning, tool calls with arguments and results, approvals. */
export function EventView({ e, onDecide }: { e: LogEvent; onDecide: (callId: string, approve: boolean) => void }) {
  const p = e.payload;
  switch (e.type) {
    case "user_message":
      return <div className="card ev user">{typeof p.content === "string" ? p.content : JSON.stringify(p.content)}</div>;
    case "assistant_message": {
      const m = p.message ?? {};
      return (
        <div className="card ev">
          {m.reasoning_content && <details><summary className="muted">reasoning</summary>{m.reasoning_content}</details>}
          {m.content}
          {(m.tool_calls ?? []).map((c: any) => <div key={c.id} className="muted">→ {c.function?.name}({c.function?.arguments})</div>)}
        </div>
      );
    }
    case "tool_result":
      return <div className="card ev muted">{p.name} [{p.state}{p.isError ? ", error" : ""}]: {String(p.content).slice(0, 2000)}</div>;
    case "approval_requested": {
      const calls: any[] = p.calls ?? (p.callId ? [p] : []);
      return (
        <div className="card ev">
          Approval needed
          {calls.map((c) => (
            <div className="row" key={c.callId ?? c.id}>
              <code>{c.name ?? c.function?.name} {c.arguments ?? c.function?.arguments}</code>
              <button onClick={() => onDecide(c.callId ?? c.id, true)}>Approve</button>
              <button className="secondary" onClick={() => onDecide(c.callId ?? c.id, false)}>Deny</button>
            </div>
          ))}
        </div>
      );
    }
    default:
      return <div className="card ev muted">{e.type}: {JSON.stringify(p).slice(0, 500)}</div>;
  }
}
