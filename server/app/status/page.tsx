"use client";
import Link from "next/link";
import { useQuery } from "@tanstack/react-query";
import { api, keel, when } from "@/src/ui/api";
import { QueryState, Shell, TableBox } from "@/src/ui/shell";

type Worker = { id: string; hostname: string; version: string; startedAt: string; heartbeatAt: string; alive: boolean };
type Status = { workers: Worker[]; queueDepth: number; activeRuns: number; waitingApproval: number };
type Totals = { runs: number; promptTokens: number; completionTokens: number; totalTokens: number };
type Usage = { days: number; totals: Totals; byAgent: (Totals & { agentId: string; agentName: string })[] };
type Sandbox = { id: string; sessionId: string; driver: string; state: string; lastError: string | null; lastActiveAt: string };

const REFRESH_MS = 3_000;

function ago(d: string): string {
  const s = Math.max(0, Math.round((Date.now() - new Date(d).getTime()) / 1000));
  return s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}

export default function StatusPage() {
  const status = useQuery({ queryKey: ["status"], queryFn: () => keel.call(api.status.get), refetchInterval: REFRESH_MS });
  const sandboxes = useQuery({ queryKey: ["sandboxes"], queryFn: () => keel.call(api.sandboxes.list), refetchInterval: REFRESH_MS });
  const usage = useQuery({ queryKey: ["usage"], queryFn: () => keel.call(api.usage.get, { query: { days: "30" } }), refetchInterval: 30_000 });
  const s = status.data;
  const n = (x: number) => x.toLocaleString("en-US");
  return (
    <Shell>
      <div className="row">
        <h1>Status</h1>
        <span className="muted">
          refreshes every {REFRESH_MS / 1000} s{status.isFetching ? " · updating…" : ""}
        </span>
      </div>
      <QueryState q={status}>
        {s && (
          <>
            <div className="stats">
              <div className="card stat" data-testid="queue-depth">
                <span className="num">{s.queueDepth}</span>
                <span className="muted">queued runs</span>
              </div>
              <div className="card stat" data-testid="active-runs">
                <span className="num">{s.activeRuns}</span>
                <span className="muted">running</span>
              </div>
              <div className="card stat">
                <span className="num">{s.waitingApproval}</span>
                <span className="muted">waiting for approval</span>
              </div>
              <div className="card stat">
                <span className="num">{s.workers.filter((w) => w.alive).length}</span>
                <span className="muted">workers alive</span>
              </div>
            </div>
            <h2>Workers</h2>
            {s.workers.length === 0 ? (
              <p className="muted empty">
                No workers: runs stay queued until one starts (<code>keel worker</code>).
              </p>
            ) : (
              <TableBox>
                <table>
                  <thead>
                    <tr>
                      <th>Worker</th>
                      <th>Host</th>
                      <th>State</th>
                      <th>Heartbeat</th>
                      <th>Started</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.workers.map((w) => (
                      <tr key={w.id} data-worker={w.id}>
                        <td>
                          <code>{w.id.slice(0, 8)}</code>
                        </td>
                        <td>{w.hostname}</td>
                        <td>
                          <span className={`badge ${w.alive ? "succeeded" : "failed"}`}>{w.alive ? "alive" : "gone"}</span>
                        </td>
                        <td>{ago(w.heartbeatAt)}</td>
                        <td className="muted">{when(w.startedAt)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableBox>
            )}
          </>
        )}
      </QueryState>
      <h2>Token usage, last 30 days</h2>
      <QueryState q={usage} empty={usage.data?.byAgent.length === 0} emptyText="No runs in the last 30 days.">
        <TableBox>
          <table data-testid="usage">
            <thead>
              <tr>
                <th>Agent</th>
                <th>Runs</th>
                <th>Prompt tokens</th>
                <th>Completion tokens</th>
                <th>Total</th>
              </tr>
            </thead>
            <tbody>
              {usage.data?.byAgent.map((a) => (
                <tr key={a.agentId} data-usage-agent={a.agentId}>
                  <td>
                    <Link href={`/agents/${a.agentId}`}>{a.agentName}</Link>
                  </td>
                  <td>{n(a.runs)}</td>
                  <td>{n(a.promptTokens)}</td>
                  <td>{n(a.completionTokens)}</td>
                  <td>{n(a.totalTokens)}</td>
                </tr>
              ))}
              {usage.data && (
                <tr className="total">
                  <td>
                    <strong>All agents</strong>
                  </td>
                  <td>{n(usage.data.totals.runs)}</td>
                  <td>{n(usage.data.totals.promptTokens)}</td>
                  <td>{n(usage.data.totals.completionTokens)}</td>
                  <td>
                    <strong>{n(usage.data.totals.totalTokens)}</strong>
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
      <h2>Sandboxes</h2>
      <QueryState q={sandboxes} empty={sandboxes.data?.sandboxes.length === 0} emptyText="No sandboxes running.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Sandbox</th>
                <th>Session</th>
                <th>Driver</th>
                <th>State</th>
                <th>Last active</th>
              </tr>
            </thead>
            <tbody>
              {sandboxes.data?.sandboxes.map((b) => (
                <tr key={b.id}>
                  <td>
                    <code>{b.id.slice(0, 8)}</code>
                  </td>
                  <td>
                    <Link href={`/sessions/${b.sessionId}`}>{b.sessionId.slice(0, 8)}</Link>
                  </td>
                  <td>{b.driver}</td>
                  <td title={b.lastError ?? undefined}>{b.state}</td>
                  <td>{ago(b.lastActiveAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
    </Shell>
  );
}
