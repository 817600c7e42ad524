// The one-click local environment (kind/up.sh through main's launcher): prerequisites with what
// to fix, each step's state and elapsed time, the streamed logs, cancel, retry from the failed
// step, tear down, and the dashboard link when it is up. Not tied to a context: it makes one.
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { LauncherLogLine, LauncherState, LauncherStep } from "../shared/contract.ts";
import { api, call } from "./api.ts";
import { ErrorBox, Loading } from "./ui.tsx";

const KEY = ["*", "launcher"];
const MAX_LINES = 500;

function elapsed(step: LauncherStep, now: number): string {
  const ms = step.elapsedMs ?? (step.state === "running" && step.startedAt ? now - Date.parse(step.startedAt) : null);
  return ms === null ? "" : ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function LocalEnvView() {
  const qc = useQueryClient();
  const state = useQuery({ queryKey: KEY, queryFn: () => call("launcher:state") });
  const prereqs = useQuery({ queryKey: ["*", "launcher", "prereqs"], queryFn: () => call("launcher:prereqs"), enabled: false });
  const [logs, setLogs] = useState<LauncherLogLine[]>([]);
  const [now, setNow] = useState(Date.now());
  const running = state.data?.status === "running" || state.data?.status === "tearing-down";

  useEffect(() => {
    void call("launcher:logs", {}).then(
      (l) => setLogs(l.slice(-MAX_LINES)),
      () => {},
    );
    const offState = api.on("launcher:changed", (s) => qc.setQueryData<LauncherState>(KEY, s));
    const offLog = api.on("launcher:log", (l) => setLogs((ls) => [...ls.slice(-(MAX_LINES - 1)), l]));
    return () => {
      offState();
      offLog();
    };
  }, [qc]);
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(t);
  }, [running]);

  const act = useMutation({
    mutationFn: (op: "start" | "cancel" | "retry" | "teardown") =>
      op === "start" ? call("launcher:start", {}) : call(op === "cancel" ? "launcher:cancel" : op === "retry" ? "launcher:retry" : "launcher:teardown"),
    onSuccess: (s, op) => {
      qc.setQueryData(KEY, s);
      if (op !== "cancel") setLogs((ls) => ls.filter((l) => l.runId >= s.runId));
    },
  });

  if (state.isPending) return <Loading what="local environment" />;
  if (state.isError) return <ErrorBox title="Local environment" error={state.error} />;
  const s = state.data;
  const canStart = ["idle", "cancelled", "failed", "torn-down", "succeeded"].includes(s.status);
  return (
    <div className="localenv">
      <section className="card">
        <div className="row">
          <h2>Local Kubernetes (kind)</h2>
          <span className={`badge st-${s.status}`} data-testid="launcher-status">
            {s.status}
          </span>
          <span className="muted small">context {s.context}</span>
        </div>
        <p className="muted">Creates a kind cluster with agent-sandbox and Keel (kind/up.sh). A second run on an existing cluster changes nothing.</p>
        <div className="row">
          <button disabled={!canStart || act.isPending} onClick={() => act.mutate("start")}>
            {s.status === "succeeded" ? "Run again" : "Start"}
          </button>
          <button className="secondary" disabled={s.status !== "running" || act.isPending} onClick={() => act.mutate("cancel")}>
            Cancel
          </button>
          <button className="secondary" disabled={!(s.status === "failed" || s.status === "cancelled") || act.isPending} onClick={() => act.mutate("retry")}>
            Retry from failed step
          </button>
          <button className="danger" disabled={running || act.isPending} onClick={() => act.mutate("teardown")}>
            Tear down
          </button>
          <button className="secondary" disabled={prereqs.isFetching} onClick={() => void prereqs.refetch()}>
            Check prerequisites
          </button>
        </div>
        {act.isError && <ErrorBox error={act.error} />}
        {s.error && <ErrorBox title={`Step ${s.error.step} failed`} error={new Error(s.error.message)} />}
        {s.status === "succeeded" && s.dashboardUrl && (
          <p className="note ok-note" data-testid="dashboard">
            Keel is up:{" "}
            <a href={s.dashboardUrl} target="_blank" rel="noreferrer">
              {s.dashboardUrl}
            </a>
          </p>
        )}
        {prereqs.isError && <ErrorBox error={prereqs.error} />}
        {prereqs.data && (
          <ul className="checks" data-testid="prereqs">
            {prereqs.data.checks.map((c) => (
              <li key={c.id} data-check={c.id}>
                <span className={`badge ${c.status === "ok" ? "ok" : c.status === "failed" ? "bad" : ""}`}>{c.status}</span> <strong>{c.id}</strong>{" "}
                <span className="muted">{c.message}</span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <div className="split localsplit">
        <section className="card">
          <h2>Steps</h2>
          <table>
            <tbody>
              {s.steps.map((st) => (
                <tr key={st.name} data-step={st.name} data-state={st.state}>
                  <td>{st.title}</td>
                  <td>
                    <span className={`badge step-${st.state}`}>{st.state}</span>
                  </td>
                  <td className="muted small nowrap">{elapsed(st, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section className="card">
          <h2>Logs</h2>
          {logs.length === 0 ? (
            <p className="state muted">No output yet: start the environment to see each step's output here.</p>
          ) : (
            <pre className="logs" data-testid="launcher-logs">
              {logs.map((l) => `[${l.step}] ${l.line}`).join("\n")}
            </pre>
          )}
        </section>
      </div>
    </div>
  );
}
