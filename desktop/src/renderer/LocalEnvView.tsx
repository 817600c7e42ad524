// The one-click local environment (kind/up.sh through main's launcher): prerequisites with what
// to fix, each step's state and elapsed time, the streamed logs, cancel, retry from the failed
// step, tear down (asked first), and the dashboard link when it is up. The port and "skip build"
// are the run's settings (their defaults come from KEEL_PORT / KEEL_SKIP_BUILD in main's
// environment). A cluster that exists already is said so at start; after a run the connection
// main made (an API key created for the app) becomes the Sessions tab's for that context.
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { LauncherLogLine, LauncherState, LauncherStep } from "../shared/contract.ts";
import { api, call } from "./api.ts";
import { adoptConnection } from "./SessionsView.tsx";
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
  const [port, setPort] = useState<string | null>(null);
  const [skipBuild, setSkipBuild] = useState<boolean | null>(null);
  const [confirmTeardown, setConfirmTeardown] = useState(false);
  const conn = state.data?.connection;
  useEffect(() => {
    if (state.data && conn?.id)
      adoptConnection(state.data.context, {
        id: conn.id,
        baseUrl: conn.baseUrl,
        role: conn.role ?? "admin",
        actor: conn.actor ?? "",
        teamId: conn.teamId ?? "",
      });
  }, [state.data, conn]);

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
      op === "start"
        ? call("launcher:start", {
            ...(port && /^\d+$/.test(port) ? { port: Number(port) } : {}),
            ...(skipBuild !== null ? { skipBuild } : {}),
          })
        : call(op === "cancel" ? "launcher:cancel" : op === "retry" ? "launcher:retry" : "launcher:teardown"),
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
        {s.existingCluster && s.status === "idle" && (
          <p className="note" data-testid="existing-cluster">
            A kind cluster for {s.context} exists already{s.dashboardUrl ? ` and Keel answers on ${s.dashboardUrl}` : ""}: Start checks it and changes only what
            is missing.
          </p>
        )}
        <div className="row">
          <label className="small">
            Dashboard port{" "}
            <input
              aria-label="dashboard port"
              inputMode="numeric"
              size={5}
              value={port ?? String(s.port)}
              onChange={(e) => setPort(e.target.value)}
              aria-invalid={port !== null && !/^\d{4,5}$/.test(port)}
            />
          </label>
          <label className="small">
            <input type="checkbox" aria-label="skip build" checked={skipBuild ?? false} onChange={(e) => setSkipBuild(e.target.checked)} /> Skip the image build
          </label>
        </div>
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
          {confirmTeardown ? (
            <span className="confirm" role="group" aria-label="confirm tear down">
              <span className="small">Delete the kind cluster {s.context.replace(/^kind-/, "")} and everything in it?</span>
              <button className="danger" disabled={running || act.isPending} onClick={() => (setConfirmTeardown(false), act.mutate("teardown"))}>
                Delete the cluster
              </button>
              <button className="secondary" onClick={() => setConfirmTeardown(false)}>
                Keep it
              </button>
            </span>
          ) : (
            <button className="danger" disabled={running || act.isPending} onClick={() => setConfirmTeardown(true)}>
              Tear down
            </button>
          )}
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
        {conn && (
          <p className={`note ${conn.id ? "ok-note" : ""}`} data-testid="handover">
            {conn.id
              ? `Connected to Keel at ${conn.baseUrl} with an API key made for this app: open Sessions with context ${s.context}.`
              : `Keel is up, but the app could not connect to it: ${conn.error}`}
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
