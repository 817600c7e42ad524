"use client";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import type { AgentCreateInput } from "@keel/core/contract/api-schemas";
import { api, keel } from "@/src/ui/api";
import { AgentForm, toolLabel, type Agent, type AgentInput } from "@/src/ui/agent-form";
import { ErrorNote, QueryState, Shell, TableBox } from "@/src/ui/shell";

export default function AgentsPage() {
  const qc = useQueryClient();
  const agents = useQuery({ queryKey: ["agents"], queryFn: () => keel.call(api.agents.list) });
  const [showForm, setShowForm] = useState(false);
  const [formKey, setFormKey] = useState(0);
  const create = useMutation({
    mutationFn: (body: AgentInput) => keel.call(api.agents.create, { body: body as AgentCreateInput }), // the form edits JSON text: the server checks it
    onSuccess: () => {
      setShowForm(false);
      setFormKey((k) => k + 1);
      return qc.invalidateQueries({ queryKey: ["agents"] });
    },
  });
  const newSession = useMutation({
    mutationFn: (agentId: string) => keel.call(api.sessions.create, { body: { agentId } }),
    onSuccess: (s) => (location.href = `/sessions/${s.id}`),
  });
  return (
    <Shell>
      <div className="row">
        <h1>Agents</h1>
        <button className="secondary" onClick={() => setShowForm((v) => !v)} aria-expanded={showForm}>
          {showForm ? "Close" : "New agent"}
        </button>
      </div>
      {showForm && (
        <section className="card">
          <h2>Create an agent</h2>
          <AgentForm key={formKey} submitLabel="Create agent" busy={create.isPending} error={create.error} onSubmit={(b) => create.mutate(b)} />
        </section>
      )}
      <QueryState q={agents} empty={agents.data?.agents.length === 0} emptyText="No agents yet: create one to start a session.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Model</th>
                <th>Version</th>
                <th>Tools</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {agents.data?.agents.map((a) => (
                <tr key={a.id} data-agent={a.name}>
                  <td>
                    <Link href={`/agents/${a.id}`}>{a.name}</Link>
                  </td>
                  <td>{a.model}</td>
                  <td>v{a.version}</td>
                  <td className="muted">{a.tools.map(toolLabel).join(", ") || "none"}</td>
                  <td>
                    <button className="secondary" disabled={newSession.isPending} onClick={() => newSession.mutate(a.id)}>
                      New session
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
        <ErrorNote error={newSession.error} prefix="Could not start a session" />
      </QueryState>
    </Shell>
  );
}
