// Claims, sandboxes, templates and warm pools of the context (one namespace or all): status,
// reason and age; create a claim from a template, suspend/resume/delete a claim and read its
// events, scale a warm pool. A watch in main pushes sandboxes:changed with the changed row, which
// patches the list held here (no re-list); polling every 2 s is the fallback while the watch is not
// healthy. Claims show Keel's team and session; Keel's claims for a session in use get a warning
// and no suspend or delete; delete asks first.
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
    refetchInterval: watch?.state === "watching" ? false : 2_000,
  });
  const [confirming, setConfirming] = useState<string | null>(null);
  const [eventsOf, setEventsOf] = useState<SandboxRow | null>(null);
  useEffect(
    () =>
      api.on("sandboxes:changed", (e) => {
        if (e.context !== context || (namespace && e.namespace !== namespace)) return;
        qc.setQueryData<SandboxRow[]>([context, "sandboxes", namespace], (old) => (old ? patchRows(old, e) : old));
      }),
    [context, namespace, qc],
  );
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
                          {r.kind === "SandboxClaim" && (r.team || r.session) && (
                            <div className="muted small" data-testid="keel-owner">
                              team {r.team ?? "–"} · session {r.session ?? "–"}
                            </div>
                          )}
                          {r.kind === "SandboxClaim" && r.managedByKeel && !["terminated", "failed"].includes(r.status) && (
                            <div className="note small" data-testid="keel-managed">
                              Keel's sandbox for a session in use: end the session in Keel instead of suspending or deleting it here.
                            </div>
                          )}
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
                                  disabled={lifecycle.isPending || !r.sandbox || inUse(r)}
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
                              {confirming === r.uid ? (
                                <span className="confirm" role="group" aria-label={`confirm delete ${r.name}`}>
                                  <span className="small">Delete {r.name}? Its sandbox and pod go with it.</span>
                                  <button
                                    className="danger"
                                    aria-label={`confirm delete ${r.name}`}
                                    disabled={remove.isPending}
                                    onClick={() => (setConfirming(null), remove.mutate(r))}
                                  >
                                    Delete
                                  </button>
                                  <button className="secondary" onClick={() => setConfirming(null)}>
                                    Keep
                                  </button>
                                </span>
                              ) : (
                                <button
                                  className="danger"
                                  aria-label={`delete ${r.name}`}
                                  disabled={remove.isPending || inUse(r)}
                                  onClick={() => setConfirming(r.uid)}
                                >
                                  Delete
                                </button>
                              )}
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

/** Keel's claim for a session that still uses it: main refuses suspend and delete too. */
const inUse = (r: SandboxRow) => r.managedByKeel === true && !["terminated", "failed"].includes(r.status);

/** The list with one watch event applied: the row replaced, added (sorted as main sorts) or removed. */
export function patchRows(rows: SandboxRow[], e: { kind: SandboxKind; namespace: string; name: string; row: SandboxRow | null }): SandboxRow[] {
  const rest = rows.filter((r) => !(r.kind === e.kind && r.namespace === e.namespace && r.name === e.name));
  if (!e.row) return rest;
  return [...rest, e.row].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
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
