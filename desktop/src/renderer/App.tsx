// One layout: a top bar with the context picker (and its connection checks) and the namespace
// picker, then the Sandboxes or Sessions view for that context.
import { useEffect, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call } from "./api.ts";
import { ContextBar } from "./ContextBar.tsx";
import { SandboxesView } from "./SandboxesView.tsx";
import { dropConnection, SessionsView } from "./SessionsView.tsx";
import { LocalEnvView } from "./LocalEnvView.tsx";
import { ErrorBox, Loading } from "./ui.tsx";

type Tab = "sandboxes" | "sessions" | "local";
const TABS: { id: Tab; title: string }[] = [
  { id: "sandboxes", title: "Sandboxes" },
  { id: "sessions", title: "Sessions" },
  { id: "local", title: "Local cluster" },
];

export function App() {
  const contexts = useQuery({ queryKey: ["*", "contexts"], queryFn: () => call("kube:contexts:list") });
  const [context, setContext] = useState<string | null>(null);
  const [namespace, setNamespace] = useState<string>("");
  const [tab, setTab] = useState<Tab>("sandboxes");
  const qc = useQueryClient();
  // A finished kind run adds a context; main may also say the kubeconfig changed.
  useEffect(() => {
    const refresh = () => void qc.invalidateQueries({ queryKey: ["*", "contexts"] });
    const offContexts = api.on("kube:contexts:changed", refresh);
    const offLauncher = api.on("launcher:changed", (s) => (s.status === "succeeded" || s.status === "torn-down" ? refresh() : undefined));
    return () => {
      offContexts();
      offLauncher();
    };
  }, [qc]);

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
              // The old context's Keel connection (and its port-forward) goes with it.
              if (context && context !== c) dropConnection(context);
              setContext(c);
              setNamespace("");
            }}
            onNamespace={setNamespace}
          />
        )}
      </header>
      <nav className="tabs" role="tablist">
        {TABS.map((t) => (
          <button key={t.id} role="tab" aria-selected={tab === t.id} className={tab === t.id ? "tab active" : "tab"} onClick={() => setTab(t.id)}>
            {t.title}
          </button>
        ))}
      </nav>
      <main className="content">
        {tab === "local" ? (
          <LocalEnvView />
        ) : context === null ? (
          contexts.isPending ? (
            <Loading what="contexts" />
          ) : (
            <p className="state muted">Pick a context to start.</p>
          )
        ) : tab === "sandboxes" ? (
          <SandboxesView key={context} context={context} namespace={namespace} />
        ) : (
          <SessionsView key={context} context={context} />
        )}
      </main>
    </div>
  );
}
