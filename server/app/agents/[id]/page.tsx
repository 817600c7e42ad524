"use client";
import Link from "next/link";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { use, useState } from "react";
import type { AgentUpdateInput } from "@keel/core/contract/api-schemas";
import { api, keel } from "@/src/ui/api";
import { AgentForm, type Agent, type AgentInput } from "@/src/ui/agent-form";
import { ErrorNote, QueryState, Shell } from "@/src/ui/shell";

/** Edit writes a new version; sessions already started keep theirs. */
export default function AgentPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = use(params);
  const qc = useQueryClient();
  const agent = useQuery({ queryKey: ["agent", id], queryFn: () => keel.call(api.agents.get, { params: { id } }) });
  const [saved, setSaved] = useState<number | null>(null);
  const save = useMutation({
    mutationFn: (body: AgentInput) => keel.call(api.agents.update, { params: { id }, body: body as AgentUpdateInput }), // the form edits JSON text: the server checks it
    onSuccess: async (r) => {
      setSaved(r.version);
      await qc.invalidateQueries({ queryKey: ["agent", id] });
      await qc.invalidateQueries({ queryKey: ["agents"] });
    },
  });
  const remove = useMutation({
    mutationFn: () => keel.call(api.agents.delete, { params: { id } }),
    onSuccess: () => (location.href = "/agents"),
  });
  const a = agent.data;
  return (
    <Shell>
      <p>
        <Link href="/agents">← Agents</Link>
      </p>
      <QueryState q={agent}>
        {a && (
          <>
            <div className="row">
              <h1>{a.name}</h1>
              <span className="muted">version {a.version}</span>
            </div>
            <AgentForm
              key={a.version}
              initial={{ ...a, name: a.name }}
              submitLabel="Save new version"
              busy={save.isPending}
              error={save.error}
              onSubmit={({ name: _name, ...body }) => {
                setSaved(null);
                save.mutate(body);
              }}
            />
            {saved !== null && (
              <p className="ok" role="status">
                Saved as version {saved}.
              </p>
            )}
            <details className="danger">
              <summary>Delete agent</summary>
              <p className="muted">Existing sessions stay readable; no new sessions can start.</p>
              <button className="danger" disabled={remove.isPending} onClick={() => remove.mutate()}>
                Delete {a.name}
              </button>
              <ErrorNote error={remove.error} />
            </details>
          </>
        )}
      </QueryState>
    </Shell>
  );
}
