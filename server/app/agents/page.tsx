"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { api } from "@/src/ui/api";
import { QueryState, Shell } from "@/src/ui/shell";

type Agent = { id: string; name: string; version: number; model: string; tools: unknown[] };

export default function AgentsPage() {
  const qc = useQueryClient();
  const agents = useQuery({ queryKey: ["agents"], queryFn: () => api<{ agents: Agent[] }>("/api/v1/agents") });
  const [error, setError] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: (body: object) => api("/api/v1/agents", { method: "POST", body }),
    onSuccess: () => qc.invalidateQueries({ queryKey: ["agents"] }),
    onError: (e) => setError(e.message),
  });
  const newSession = async (agentId: string) => {
    const s = await api<{ id: string }>("/api/v1/sessions", { method: "POST", body: { agentId } });
    location.href = `/sessions/${s.id}`;
  };
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const tools = String(f.get("tools") ?? "").split(",").map((t) => t.trim()).filter(Boolean);
    setError(null);
    create.mutate({ name: f.get("name"), model: f.get("model"), instructions: f.get("instructions"), tools });
  };
  return (
    <Shell>
      <h1>Agents</h1>
      <QueryState q={agents} empty={agents.data?.agents.length === 0}>
        <table>
          <thead><tr><th>Name</th><th>Model</th><th>Version</th><th>Tools</th><th /></tr></thead>
          <tbody>
            {agents.data?.agents.map((a) => (
              <tr key={a.id}>
                <td>{a.name}</td><td>{a.model}</td><td>v{a.version}</td>
                <td className="muted">{a.tools.map((t) => (typeof t === "string" ? t : (t as { name: string }).name)).join(", ")}</td>
                <td><button className="secondary" onClick={() => void newSession(a.id)}>New session</button></td>
              </tr>
            ))}
          </tbody>
        </table>
      </QueryState>
      <h2>Create an agent</h2>
      <form className="stack" onSubmit={submit}>
        <input name="name" placeholder="name" required />
        <input name="model" placeholder="model (demo for the offline demo model)" defaultValue="demo" required />
        <textarea name="instructions" placeholder="instructions" rows={3} />
        <input name="tools" placeholder="tools, comma-separated (calculator, get_time)" defaultValue="calculator, get_time" />
        <button disabled={create.isPending}>{create.isPending ? "Creating…" : "Create"}</button>
        {error && <p className="error" role="alert">{error}</p>}
      </form>
    </Shell>
  );
}
