"use client";
// Team settings sections: your password, members (people join by invitation: src/ui/invitations.tsx), API keys (the key is shown once, with who
// created it), secrets (write-only).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { Role } from "@keel/core/contract/api-schemas";
import { api, keel, when } from "./api";
import { ErrorNote, QueryState, TableBox } from "./shell";

const ROLES = ["admin", "member", "viewer"] as const;

export function useSave<T, R>(key: string, fn: (body: T) => Promise<R>) {
  const qc = useQueryClient();
  return useMutation({ mutationFn: fn, onSuccess: () => qc.invalidateQueries({ queryKey: [key] }) });
}

export function Members() {
  const list = useQuery({ queryKey: ["members"], queryFn: () => keel.call(api.members.list) });
  const setRole = useSave("members", (v: { userId: string; role: Role }) =>
    keel.call(api.members.setRole, { params: { userId: v.userId }, body: { role: v.role } }),
  );
  const remove = useSave("members", (userId: string) => keel.call(api.members.remove, { params: { userId } }));
  return (
    <section aria-labelledby="members-h">
      <h2 id="members-h">Members</h2>
      <QueryState q={list} empty={list.data?.members.length === 0}>
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Email</th>
                <th>Role</th>
                <th>Since</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.members.map((m) => (
                <tr key={m.userId}>
                  <td>{m.email}</td>
                  <td>
                    <select
                      value={m.role}
                      disabled={setRole.isPending}
                      aria-label={`role of ${m.email}`}
                      onChange={(e) => setRole.mutate({ userId: m.userId, role: e.target.value as Role })}
                    >
                      {ROLES.map((r) => (
                        <option key={r}>{r}</option>
                      ))}
                    </select>
                  </td>
                  <td className="muted">{when(m.createdAt)}</td>
                  <td>
                    <button
                      className="secondary"
                      disabled={remove.isPending}
                      aria-label={`remove ${m.email}`}
                      onClick={() =>
                        window.confirm(`Remove ${m.email} from the team? Their dashboard logins end and the API keys they created are revoked at once.`) &&
                        remove.mutate(m.userId)
                      }
                    >
                      Remove
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
      <ErrorNote error={setRole.error ?? remove.error} />
    </section>
  );
}

type Key = {
  id: string;
  name: string;
  prefix: string;
  role: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
  revokedReason: "revoked" | "creator_removed" | "creator_demoted" | null;
  createdBy: { userId: string; email: string } | null;
};

const REVOKED: Record<NonNullable<Key["revokedReason"]>, string> = {
  revoked: "revoked",
  creator_removed: "revoked: creator left the team",
  creator_demoted: "revoked: creator's role lowered",
};

/** The logged-in user's own password (API keys cannot change one). Other logins end. */
export function OwnPassword() {
  const [done, setDone] = useState(false);
  const change = useMutation({ mutationFn: (body: { currentPassword: string; newPassword: string }) => keel.call(api.me.password, { body }) });
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    setDone(false);
    change.mutate(
      { currentPassword: String(f.get("current") ?? ""), newPassword: String(f.get("new") ?? "") },
      { onSuccess: () => (setDone(true), form.reset()) },
    );
  };
  return (
    <section aria-labelledby="password-h">
      <h2 id="password-h">Your password</h2>
      <form className="row" onSubmit={submit} aria-label="change password">
        <input name="current" type="password" placeholder="current password" required autoComplete="current-password" aria-label="current password" />
        <input
          name="new"
          type="password"
          placeholder="new password (12+ characters)"
          required
          minLength={12}
          autoComplete="new-password"
          aria-label="new password"
        />
        <button disabled={change.isPending}>Change password</button>
      </form>
      {done && (
        <p role="status" className="muted">
          Password changed. Your other logins have ended.
        </p>
      )}
      <ErrorNote error={change.error} />
    </section>
  );
}

export function ApiKeys() {
  const list = useQuery({ queryKey: ["api-keys"], queryFn: () => keel.call(api.apiKeys.list) });
  const [created, setCreated] = useState<{ key: string; name: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const create = useSave("api-keys", (body: { name: string; role: Role }) => keel.call(api.apiKeys.create, { body }));
  const revoke = useSave("api-keys", (id: string) => keel.call(api.apiKeys.revoke, { params: { id } }));
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const name = String(f.get("name") ?? "");
    setCopied(false);
    create.mutate({ name, role: String(f.get("role")) as Role }, { onSuccess: (r) => (setCreated({ key: r.key, name }), form.reset()) });
  };
  const copy = async () => {
    await navigator.clipboard?.writeText(created!.key).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <section aria-labelledby="keys-h">
      <h2 id="keys-h">API keys</h2>
      {created && (
        <div className="card notice" role="status" data-testid="new-key">
          <p>
            Key <strong>{created.name}</strong>: copy it now, it is not shown again.
          </p>
          <div className="row">
            <code className="secret">{created.key}</code>
            <button type="button" onClick={() => void copy()}>
              {copied ? "Copied" : "Copy"}
            </button>
            <button type="button" className="secondary" onClick={() => setCreated(null)}>
              Done
            </button>
          </div>
        </div>
      )}
      <QueryState q={list} empty={list.data?.apiKeys.length === 0} emptyText="No API keys.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>Role</th>
                <th>Created by</th>
                <th>Last used</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.apiKeys.map((k) => (
                <tr key={k.id} className={k.revokedAt ? "muted" : ""}>
                  <td>{k.name}</td>
                  <td>
                    <code>{k.prefix}…</code>
                  </td>
                  <td>{k.role}</td>
                  <td className="muted">{k.createdBy?.email ?? "unknown (before creators were recorded)"}</td>
                  <td>{when(k.lastUsedAt)}</td>
                  <td>
                    {k.revokedAt ? (
                      REVOKED[k.revokedReason ?? "revoked"]
                    ) : (
                      <button className="secondary" disabled={revoke.isPending} onClick={() => revoke.mutate(k.id)} aria-label={`revoke ${k.name}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
      <form className="row" onSubmit={submit} aria-label="create API key">
        <input name="name" placeholder="key name" required maxLength={100} aria-label="key name" />
        <select name="role" defaultValue="member" aria-label="key role">
          {ROLES.map((r) => (
            <option key={r}>{r}</option>
          ))}
        </select>
        <button disabled={create.isPending}>Create key</button>
      </form>
      <ErrorNote error={create.error ?? revoke.error} />
    </section>
  );
}

export function Secrets() {
  const list = useQuery({ queryKey: ["secrets"], queryFn: () => keel.call(api.secrets.list) });
  const put = useSave("secrets", ({ name, value, allowedHosts }: { name: string; value: string; allowedHosts: string[] }) =>
    keel.call(api.secrets.put, { params: { name }, body: { value, allowedHosts } }),
  );
  const remove = useSave("secrets", (name: string) => keel.call(api.secrets.delete, { params: { name } }));
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const allowedHosts = String(f.get("allowedHosts") ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter(Boolean);
    put.mutate({ name: String(f.get("name")), value: String(f.get("value")), allowedHosts }, { onSuccess: () => form.reset() });
  };
  return (
    <section aria-labelledby="secrets-h">
      <h2 id="secrets-h">Secrets</h2>
      <p className="muted">
        Values are write-only: they go to the team's sandboxes as environment variables (or, when bound to hosts, only to those hosts as a provider key or MCP
        header) and are never shown again.
      </p>
      <QueryState q={list} empty={list.data?.secrets.length === 0} emptyText="No secrets.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Sent only to</th>
                <th>Updated</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.secrets.map((s) => (
                <tr key={s.name}>
                  <td>
                    <code>{s.name}</code>
                  </td>
                  <td className="mono">{s.allowedHosts.join(", ") || "any host, sandboxes"}</td>
                  <td className="muted">{when(s.updatedAt)}</td>
                  <td>
                    <button className="secondary" disabled={remove.isPending} onClick={() => remove.mutate(s.name)} aria-label={`delete ${s.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
      <form className="row" onSubmit={submit} aria-label="set secret">
        <input name="name" placeholder="NAME" required aria-label="secret name" />
        <input name="value" type="password" placeholder="value" required autoComplete="off" aria-label="secret value" />
        <input name="allowedHosts" placeholder="only to hosts (optional): api.openai.com, *.corp.example" aria-label="secret allowed hosts" />
        <button disabled={put.isPending}>Set secret</button>
      </form>
      <ErrorNote error={put.error ?? remove.error} />
    </section>
  );
}
