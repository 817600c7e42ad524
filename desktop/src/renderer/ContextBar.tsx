// Context picker with the selected context's checks (connection, agent-sandbox, Keel install),
// each failed check showing kube.ts's message, and the namespace picker.
import { useQuery } from "@tanstack/react-query";
import type { Check, ContextList } from "../shared/contract.ts";
import { ApiError, call } from "./api.ts";
import { ErrorBox } from "./ui.tsx";

function CheckBadge({ label, check }: { label: string; check: Check<object> | null }) {
  if (check === null)
    return (
      <span className="badge muted" title="skipped: not connected">
        {label}: –
      </span>
    );
  return (
    <span className={`badge ${check.ok ? "ok" : "warn"}`} data-check={label} title={check.ok ? "ok" : check.message}>
      {label}: {check.ok ? "ok" : check.code}
    </span>
  );
}

export function ContextBar(p: {
  list: ContextList;
  context: string | null;
  namespace: string;
  onContext: (c: string) => void;
  onNamespace: (n: string) => void;
}) {
  const { context } = p;
  const status = useQuery({
    queryKey: [context, "status"],
    queryFn: () => call("kube:context:status", { context: context! }),
    enabled: context !== null,
    refetchInterval: 15_000,
  });
  const namespaces = useQuery({
    queryKey: [context, "namespaces"],
    queryFn: () => call("kube:namespaces:list", { context: context! }),
    enabled: context !== null && status.data?.connection.ok === true,
  });
  const s = status.data;
  // Connection failures are errors; a missing agent-sandbox or Keel install is worth a note but
  // leaves the rest usable (sessions by URL, other namespaces).
  const problems = s ? [s.connection, s.agentSandbox, s.keel].flatMap((c) => (c && !c.ok ? [c] : [])) : [];
  return (
    <div className="contextbar">
      <label className="field">
        <span>Context</span>
        <select aria-label="context" value={context ?? ""} onChange={(e) => p.onContext(e.target.value)}>
          {p.list.contexts.map((c) => (
            <option key={c.name} value={c.name}>
              {c.name}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>Namespace</span>
        <select aria-label="namespace" value={p.namespace} onChange={(e) => p.onNamespace(e.target.value)} disabled={!namespaces.data}>
          <option value="">All namespaces</option>
          {namespaces.data?.namespaces.map((n) => (
            <option key={n} value={n}>
              {n}
            </option>
          ))}
        </select>
      </label>
      <div className="status" data-testid="context-status" aria-live="polite">
        {status.isPending ? (
          <span className="badge muted" role="status">
            Loading status…
          </span>
        ) : status.isError ? (
          <ErrorBox error={status.error} />
        ) : (
          <>
            <span className={`badge ${s!.connection.ok ? "ok" : "bad"}`} data-testid="connection">
              {s!.connection.ok ? `connected · ${s!.connection.version}` : "not connected"}
            </span>
            <CheckBadge label="agent-sandbox" check={s!.agentSandbox} />
            <CheckBadge label="keel" check={s!.keel} />
          </>
        )}
      </div>
      {problems.length > 0 && (
        <div className="context-problems">
          {problems.map((c) =>
            c.code === "unreachable" ||
            c.code === "unauthorized" ||
            c.code === "credential_plugin_failed" ||
            c.code === "forbidden" ||
            c.code === "tls_error" ||
            c.code === "kubeconfig_invalid" ? (
              <ErrorBox key={c.code} error={new ApiError({ name: "KubeError", code: c.code, message: c.message })} />
            ) : (
              <p key={c.code} className="note" data-code={c.code}>
                {c.message}
              </p>
            ),
          )}
        </div>
      )}
    </div>
  );
}
