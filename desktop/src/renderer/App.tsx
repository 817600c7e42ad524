// One layout: a top bar with the context picker (and its connection checks) and the namespace
// picker, then the Sandboxes or Sessions view for that context.
import { useEffect, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { call } from "./api.ts";
import { ContextBar } from "./ContextBar.tsx";
import { SandboxesView } from "./SandboxesView.tsx";
import { SessionsView } from "./SessionsView.tsx";
import { ErrorBox, Loading } from "./ui.tsx";

type Tab = "sandboxes" | "sessions";

export function App() {
  const contexts = useQuery({ queryKey: ["*", "contexts"], queryFn: () => call("kube:contexts:list") });
  const [context, setContext] = useState<string | null>(null);
  const [namespace, setNamespace] = useState<string>("");
  const [tab, setTab] = useState<Tab>("sandboxes");

  useEffect(() => {
    if (context === null && contexts.data) setContext(contexts.data.current ?? contexts.data.contexts[0]?.name ?? null);
  }, [contexts.data, context]);

  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">Keel</span>
        {contexts.isPending ? (
          <Loading what="kubeconfig" />
        ) : contexts.isError ? (
          <ErrorBox title="Kubeconfig" error={contexts.error} />
        ) : contexts.data.contexts.length === 0 ? (
          <p className="muted">No contexts in {contexts.data.files.join(", ") || "~/.kube/config (not found)"}. Set KUBECONFIG or create a cluster.</p>
        ) : (
          <ContextBar
            list={contexts.data}
            context={context}
            namespace={namespace}
            onContext={(c) => {
              setContext(c);
              setNamespace("");
            }}
            onNamespace={setNamespace}
          />
        )}
      </header>
      <nav className="tabs" role="tablist">
        {(["sandboxes", "sessions"] as const).map((t) => (
          <button key={t} role="tab" aria-selected={tab === t} className={tab === t ? "tab active" : "tab"} onClick={() => setTab(t)}>
            {t === "sandboxes" ? "Sandboxes" : "Sessions"}
          </button>
        ))}
      </nav>
      <main className="content">
        {context === null ? (
          contexts.isPending ? <Loading what="contexts" /> : <p className="state muted">Pick a context to start.</p>
        ) : tab === "sandboxes" ? (
          <SandboxesView key={context} context={context} namespace={namespace} />
        ) : (
          <SessionsView context={context} />
        )}
      </main>
    </div>
  );
}
