"use client";
// One form for creating and editing an agent. Only JSON syntax is checked here; every other rule
// is the API's, whose 422 issues are listed under the form (one source of truth for validation).
import { useState, type FormEvent } from "react";
import { ErrorNote } from "./shell";

export type ToolSpec = string | { name: string; requiresApproval?: boolean };
export type AgentInput = {
  name?: string;
  model: string;
  instructions: string;
  tools: ToolSpec[];
  sandboxPolicy: unknown;
  provider: Provider;
  mcpServers?: unknown[];
};
type Provider = { kind?: string; baseUrl?: string; apiKeySecret?: string; maxRetries?: number; timeoutMs?: number };
export type Agent = {
  id: string;
  name: string;
  version: number;
  model: string;
  instructions: string;
  tools: ToolSpec[];
  sandboxPolicy: unknown;
  provider: Provider;
  mcpServers?: unknown[];
};
type ToolRow = { name: string; enabled: boolean; requiresApproval: boolean };

/** Tools every worker offers (built-in and sandbox); others can be typed in. */
export const KNOWN_TOOLS = ["calculator", "get_time", "exec", "read_file", "write_file", "list_files"];

export function toolLabel(t: ToolSpec): string {
  return typeof t === "string" ? t : `${t.name}${t.requiresApproval ? " (approval)" : ""}`;
}

function rowsFrom(tools: ToolSpec[]): ToolRow[] {
  const chosen = tools.map((t) => (typeof t === "string" ? { name: t, requiresApproval: false } : { name: t.name, requiresApproval: !!t.requiresApproval }));
  const rows: ToolRow[] = chosen.map((t) => ({ ...t, enabled: true }));
  for (const name of KNOWN_TOOLS) if (!rows.some((r) => r.name === name)) rows.push({ name, enabled: false, requiresApproval: false });
  return rows;
}

export function AgentForm({
  initial,
  submitLabel,
  busy,
  error,
  onSubmit,
}: {
  initial?: AgentInput;
  submitLabel: string;
  busy: boolean;
  error: Error | null;
  onSubmit: (input: AgentInput) => void;
}) {
  const creating = initial?.name === undefined;
  const [tools, setTools] = useState<ToolRow[]>(() => rowsFrom(initial?.tools ?? []));
  const [extra, setExtra] = useState("");
  const [jsonError, setJsonError] = useState<string | null>(null);
  const setTool = (name: string, patch: Partial<ToolRow>) => setTools((ts) => ts.map((t) => (t.name === name ? { ...t, ...patch } : t)));
  const addTool = () => {
    const name = extra.trim();
    if (name && !tools.some((t) => t.name === name)) setTools((ts) => [...ts, { name, enabled: true, requiresApproval: false }]);
    setExtra("");
  };
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    let sandboxPolicy: unknown;
    try {
      sandboxPolicy = JSON.parse(String(f.get("sandboxPolicy") || "{}"));
      setJsonError(null);
    } catch (err) {
      setJsonError(`Sandbox policy is not valid JSON: ${(err as Error).message}`);
      return;
    }
    let mcpServers: unknown[];
    try {
      const parsed: unknown = JSON.parse(String(f.get("mcpServers") || "[]"));
      if (!Array.isArray(parsed)) throw new Error("expected a list");
      mcpServers = parsed;
    } catch (err) {
      setJsonError(`MCP servers are not a valid JSON list: ${(err as Error).message}`);
      return;
    }
    const kind = String(f.get("providerKind") ?? "");
    const baseUrl = String(f.get("baseUrl") ?? "").trim();
    const apiKeySecret = String(f.get("apiKeySecret") ?? "").trim();
    // Fields the form does not show (maxRetries, timeoutMs) are kept as they were.
    const { kind: _k, baseUrl: _b, apiKeySecret: _s, ...kept } = initial?.provider ?? {};
    onSubmit({
      ...(creating ? { name: String(f.get("name") ?? "") } : {}),
      model: String(f.get("model") ?? ""),
      instructions: String(f.get("instructions") ?? ""),
      tools: tools.filter((t) => t.enabled).map((t) => ({ name: t.name, requiresApproval: t.requiresApproval })),
      sandboxPolicy,
      provider: { ...kept, ...(kind ? { kind } : {}), ...(baseUrl ? { baseUrl } : {}), ...(apiKeySecret ? { apiKeySecret } : {}) },
      mcpServers,
    });
  };
  return (
    <form className="stack" onSubmit={submit} aria-label={submitLabel}>
      {creating && (
        <label>
          Name <input name="name" required placeholder="support-bot" />
        </label>
      )}
      <label>
        Model <input name="model" defaultValue={initial?.model ?? "demo"} placeholder="demo, gpt-4o-mini, …" />
      </label>
      <label>
        Instructions <textarea name="instructions" rows={4} defaultValue={initial?.instructions ?? ""} />
      </label>
      <fieldset>
        <legend>Tools</legend>
        {tools.map((t) => (
          <div className="row tool-row" key={t.name}>
            <label>
              <input type="checkbox" checked={t.enabled} onChange={(e) => setTool(t.name, { enabled: e.target.checked })} aria-label={`tool ${t.name}`} />{" "}
              <code>{t.name}</code>
            </label>
            <label className="muted">
              <input
                type="checkbox"
                checked={t.requiresApproval}
                disabled={!t.enabled}
                onChange={(e) => setTool(t.name, { requiresApproval: e.target.checked })}
                aria-label={`approval for ${t.name}`}
              />{" "}
              needs approval
            </label>
          </div>
        ))}
        <div className="row">
          <input value={extra} onChange={(e) => setExtra(e.target.value)} placeholder="another tool name" aria-label="another tool name" />
          <button type="button" className="secondary" onClick={addTool}>
            Add tool
          </button>
        </div>
      </fieldset>
      <fieldset>
        <legend>Provider</legend>
        <label>
          Kind{" "}
          <select name="providerKind" defaultValue={initial?.provider.kind ?? ""}>
            <option value="">by model name</option>
            <option value="demo">demo</option>
            <option value="openai-compatible">OpenAI-compatible</option>
          </select>
        </label>
        <label>
          Base URL <input name="baseUrl" defaultValue={initial?.provider.baseUrl ?? ""} placeholder="worker default (KEEL_OPENAI_BASE_URL)" />
        </label>
        <label title="The workers' key goes only to the workers' default provider; an agent with its own base URL sends the team secret named here, or no key.">
          API key secret{" "}
          <input name="apiKeySecret" className="mono" defaultValue={initial?.provider.apiKeySecret ?? ""} placeholder="e.g. OPENAI_API_KEY (a team secret)" />
        </label>
      </fieldset>
      <label>
        Sandbox policy (JSON)
        <textarea name="sandboxPolicy" rows={4} className="mono" defaultValue={JSON.stringify(initial?.sandboxPolicy ?? {}, null, 2)} />
      </label>
      <label title='Header values are team secrets: headerSecrets maps a header to a secret&apos;s name, e.g. { "Authorization": "GITHUB_MCP_AUTH" }. Provider URL and key, sandbox secrets and egress, and MCP servers are admin-only.'>
        MCP servers (JSON list of {"{"} name, url, allowTools, headerSecrets {"}"})
        <textarea name="mcpServers" rows={3} className="mono" defaultValue={JSON.stringify(initial?.mcpServers ?? [], null, 2)} />
      </label>
      <button disabled={busy}>{busy ? "Saving…" : submitLabel}</button>
      {jsonError && (
        <p className="error" role="alert">
          {jsonError}
        </p>
      )}
      <ErrorNote error={error} />
    </form>
  );
}
