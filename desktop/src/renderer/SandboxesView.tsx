// Claims, sandboxes, templates and warm pools of the context (one namespace or all): status,
// reason and age; create a claim from a template, suspend/resume/delete a claim and read its
// events, scale a warm pool. A watch in main pushes sandboxes:changed (refetch at once); polling
// stays as the fallback, every 2 s while the watch is not healthy.
import { useEffect, useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { SandboxKind, SandboxRow, WatchStatus } from "../shared/contract.ts";
import { SandboxEvents } from "./SandboxEvents.tsx";
import { api, call } from "./api.ts";
import { age, Empty, ErrorBox, Loading } from "./ui.tsx";

const SECTIONS: { kind: SandboxKind; title: string; empty: string }[] = [
  { kind: "SandboxClaim", title: "Claims", empty: "No claims. Create one from a template below." },
  { kind: "Sandbox", title: "Sandboxes", empty: "No sandboxes." },
  { kind: "SandboxTemplate", title: "Templates", empty: "No SandboxTemplates here: Keel creates one per team namespace." },
  { kind: "SandboxWarmPool", title: "Warm pools", empty: "No warm pools: claims are made from a warm pool (replicas: 0 is fine)." },
];

export function SandboxesView({ context, namespace }: { context: string; namespace: string }) {
  const qc = useQueryClient();
  const key = [context, "sandboxes", namespace];
  const [watch, setWatch] = useState<WatchStatus | null>(null);
  const rows = useQuery({
    queryKey: key,
    queryFn: () => call("sandboxes:list", { context, ...(namespace ? { namespace } : {}) }),
    refetchInterval: watch?.state === "watching" ? 15_000 : 2_000,
  });
  const [eventsOf, setEventsOf] = useState<SandboxRow | null>(null);
  useEffect(() => api.on("sandboxes:changed", (e) => e.context === context && void qc.invalidateQueries({ queryKey: [context, "sandboxes"] })), [context, qc]);
  useEffect(() => {
    let watchId: string | null = null;
    let stopped = false;
    const off = api.on("sandboxes:watch:status", (w) => (w.watchId === watchId ? setWatch(w) : undefined));
    call("sandboxes:watch:start", { context, ...(namespace ? { namespace } : {}) }).then(
      (w) => {
        watchId = w.watchId;
        if (stopped) void call("sandboxes:watch:stop", { watchId });
        else setWatch(w);
      },
      () => setWatch(null), // the list shows the same error; polling carries on
    );
    return () => {
      stopped = true;
      off();
      if (watchId) void call("sandboxes:watch:stop", { watchId });
    };
  }, [context, namespace]);

  const invalidate = () => qc.invalidateQueries({ queryKey: [context, "sandboxes"] });
  const create = useMutation({
    mutationFn: (r: SandboxRow) => call("sandboxes:claim:create", { context, namespace: r.namespace, template: r.name }),
    onSettled: invalidate,
  });
  const remove = useMutation({
    mutationFn: (r: SandboxRow) => call("sandboxes:claim:delete", { context, namespace: r.namespace, name: r.name }),
    onSettled: invalidate,
  });
  const scale = useMutation({
    mutationFn: (a: { r: SandboxRow; replicas: number }) =>
      call("sandboxes:warmpool:scale", { context, namespace: a.r.namespace, name: a.r.name, replicas: a.replicas }),
    onSettled: invalidate,
  });
  const lifecycle = useMutation({
    mutationFn: (a: { r: SandboxRow; op: "suspend" | "resume" }) =>
      call(a.op === "suspend" ? "sandboxes:suspend" : "sandboxes:resume", { context, namespace: a.r.namespace, kind: "SandboxClaim", name: a.r.name }),
    onSettled: invalidate,
  });
  const failed = [create, remove, scale, lifecycle].find((m) => m.isError);
  const busyWith = lifecycle.isPending ? lifecycle.variables : null;

  if (rows.isPending) return <Loading what="sandboxes" />;
  if (rows.isError) return <ErrorBox title="Cannot list sandboxes" error={rows.error} />;
  return (
    <div className="sandboxes">
      <p className="muted small" data-testid="watch">
        {watch
          ? watch.state === "watching"
            ? "Live: watching for changes"
            : `Watch ${watch.state}${watch.message ? `: ${watch.message}` : ""} (polling meanwhile)`
          : "Polling every 2 s"}
      </p>
      {failed && <ErrorBox title="That did not work" error={failed.error} />}
      {SECTIONS.map((s) => {
        const list = rows.data.filter((r) => r.kind === s.kind);
        return (
          <section key={s.kind} className="card" data-kind={s.kind}>
            <h2>
              {s.title} <span className="count muted">{list.length}</span>
            </h2>
            {list.length === 0 ? (
              <Empty>{s.empty}</Empty>
            ) : (
              <div className="tablebox">
                <table>
                  <thead>
                    <tr>
                      <th>Name</th>
                      {!namespace && <th>Namespace</th>}
                      <th>Status</th>
                      <th>Reason</th>
                      <th>Age</th>
                      <th className="actions">Actions</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((r) => (
                      <tr key={r.uid || `${r.namespace}/${r.name}`} data-name={r.name} data-status={r.status}>
                        <td className="name">
                          {r.name}
                          {r.kind === "SandboxClaim" && r.sandbox && <div className="muted small">sandbox {r.sandbox}</div>}
                          {r.kind === "SandboxWarmPool" && <div className="muted small">template {r.template}</div>}
                        </td>
                        {!namespace && <td>{r.namespace}</td>}
                        <td>
                          <span className={`badge st-${r.status}`}>{r.status}</span>
                          {r.kind === "SandboxWarmPool" && (
                            <span className="muted small">
                              {" "}
                              {r.readyReplicas}/{r.replicas}
                            </span>
                          )}
                        </td>
                        <td className="reason" title={r.message ?? ""}>
                          {r.reason ?? "–"}
                          {r.message && <div className="muted small">{r.message}</div>}
                        </td>
                        <td>{age(r.ageSeconds)}</td>
                        <td className="actions">
                          {r.kind === "SandboxTemplate" && (
                            <button aria-label={`create claim from ${r.name}`} disabled={create.isPending} onClick={() => create.mutate(r)}>
                              Create claim
                            </button>
                          )}
                          {r.kind === "SandboxClaim" && (
                            <span className="buttons">
                              {r.status === "suspended" ? (
                                <button
                                  className="secondary"
                                  aria-label={`resume ${r.name}`}
                                  disabled={lifecycle.isPending}
                                  onClick={() => lifecycle.mutate({ r, op: "resume" })}
                                >
                                  {busyWith?.r.uid === r.uid ? "Resuming…" : "Resume"}
                                </button>
                              ) : (
                                <button
                                  className="secondary"
                                  aria-label={`suspend ${r.name}`}
                                  disabled={lifecycle.isPending || !r.sandbox}
                                  onClick={() => lifecycle.mutate({ r, op: "suspend" })}
                                >
                                  {busyWith?.r.uid === r.uid ? "Suspending…" : "Suspend"}
                                </button>
                              )}
                              <button
                                className="secondary"
                                aria-label={`events of ${r.name}`}
                                aria-pressed={eventsOf?.uid === r.uid}
                                onClick={() => setEventsOf(eventsOf?.uid === r.uid ? null : r)}
                              >
                                Events
                              </button>
                              <button className="danger" aria-label={`delete ${r.name}`} disabled={remove.isPending} onClick={() => remove.mutate(r)}>
                                Delete
                              </button>
                            </span>
                          )}
                          {r.kind === "SandboxWarmPool" && <Scale row={r} busy={scale.isPending} onScale={(replicas) => scale.mutate({ r, replicas })} />}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {s.kind === "SandboxClaim" && eventsOf && list.some((r) => r.uid === eventsOf.uid) && <SandboxEvents context={context} row={eventsOf} />}
          </section>
        );
      })}
    </div>
  );
}

function Scale({ row, busy, onScale }: { row: SandboxRow; busy: boolean; onScale: (n: number) => void }) {
  const [n, setN] = useState(String(row.replicas ?? 0));
  const valid = /^\d{1,4}$/.test(n) && Number(n) <= 1000;
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) onScale(Number(n));
      }}
    >
      <input aria-label={`replicas of ${row.name}`} inputMode="numeric" value={n} onChange={(e) => setN(e.target.value)} size={3} aria-invalid={!valid} />
      <button type="submit" disabled={busy || !valid}>
        Scale
      </button>
    </form>
  );
}
