"use client";
// The platform page (platform admins): teams (create, rename, suspend/resume, invite someone,
// delete confirmed by typing the slug) and the platform admins themselves.
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { Role } from "@keel/core/contract/api-schemas";
import { api, keel, when } from "./api";
import { useSave } from "./settings";
import { InviteForm, inviteLink, NewInvitation } from "./invitations";
import { ErrorNote, QueryState, TableBox } from "./shell";

type Team = { id: string; slug: string; name: string; members: number; createdAt: string; suspendedAt: string | null; suspendedReason: string | null };

const fields = (e: FormEvent<HTMLFormElement>) => {
  e.preventDefault();
  return new FormData(e.currentTarget);
};

export function Teams() {
  const list = useQuery({ queryKey: ["platform-teams"], queryFn: () => keel.call(api.platform.listTeams) });
  const create = useSave("platform-teams", (body: { slug: string; name?: string }) => keel.call(api.platform.createTeam, { body }));
  const submit = (e: FormEvent<HTMLFormElement>) => {
    const form = e.currentTarget;
    const f = fields(e);
    const name = String(f.get("name") ?? "").trim();
    create.mutate({ slug: String(f.get("slug") ?? ""), ...(name ? { name } : {}) }, { onSuccess: () => form.reset() });
  };
  return (
    <section aria-labelledby="teams-h">
      <h2 id="teams-h">Teams</h2>
      <form className="row" onSubmit={submit} aria-label="create team">
        <input name="slug" placeholder="slug (e.g. research)" required aria-label="new team slug" />
        <input name="name" placeholder="name (optional)" aria-label="new team name" />
        <button disabled={create.isPending}>Create team</button>
      </form>
      <ErrorNote error={create.error} />
      <QueryState q={list} empty={list.data?.teams.length === 0}>
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Slug</th>
                <th>Name</th>
                <th>Members</th>
                <th>Status</th>
                <th>Created</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.teams.map((t) => (
                <TeamRow key={t.id} team={t} />
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
    </section>
  );
}

function TeamRow({ team: t }: { team: Team }) {
  const [invited, setInvited] = useState<{ link: string; email: string } | null>(null);
  const params = { id: t.id };
  const rename = useSave("platform-teams", (body: { slug?: string; name?: string }) => keel.call(api.platform.renameTeam, { params, body }));
  const suspend = useSave("platform-teams", (reason: string) => keel.call(api.platform.suspendTeam, { params, body: { reason } }));
  const resume = useSave("platform-teams", () => keel.call(api.platform.resumeTeam, { params }));
  const remove = useSave("platform-teams", (confirm: string) => keel.call(api.platform.deleteTeam, { params, body: { confirm } }));
  const invite = useSave("platform-teams", (body: { email: string; role: Role }) => keel.call(api.platform.inviteToTeam, { params, body }));
  const onRename = (e: FormEvent<HTMLFormElement>) => {
    const f = fields(e);
    const slug = String(f.get("slug") ?? "").trim();
    const name = String(f.get("name") ?? "").trim();
    rename.mutate({ ...(slug && slug !== t.slug ? { slug } : {}), ...(name && name !== t.name ? { name } : {}) });
  };
  return (
    <tr data-team={t.slug}>
      <td>{t.slug}</td>
      <td>{t.name}</td>
      <td>{t.members}</td>
      <td className={t.suspendedAt ? "error" : "ok"}>{t.suspendedAt ? `suspended: ${t.suspendedReason ?? ""}` : "active"}</td>
      <td className="muted">{when(t.createdAt)}</td>
      <td>
        <details>
          <summary aria-label={`manage ${t.slug}`}>Manage</summary>
          <div className="stack">
            <form className="row" aria-label={`rename ${t.slug}`} onSubmit={onRename}>
              <input name="slug" defaultValue={t.slug} aria-label="slug" />
              <input name="name" defaultValue={t.name} aria-label="name" />
              <button disabled={rename.isPending}>Rename</button>
            </form>
            {t.suspendedAt ? (
              <button className="secondary" disabled={resume.isPending} onClick={() => resume.mutate()}>
                Resume
              </button>
            ) : (
              <form className="row" aria-label={`suspend ${t.slug}`} onSubmit={(e) => suspend.mutate(String(fields(e).get("reason") ?? ""))}>
                <input name="reason" placeholder="reason (shown to its members)" required aria-label="suspension reason" />
                <button className="secondary" disabled={suspend.isPending}>
                  Suspend
                </button>
              </form>
            )}
            {invited && <NewInvitation {...invited} onDone={() => setInvited(null)} />}
            <InviteForm
              label={`invite to ${t.slug}`}
              busy={invite.isPending}
              onInvite={(v, reset) => invite.mutate(v, { onSuccess: (r) => (setInvited({ link: inviteLink(r.token), email: r.email }), reset()) })}
            />
            <form className="row" aria-label={`delete ${t.slug}`} onSubmit={(e) => remove.mutate(String(fields(e).get("confirm") ?? ""))}>
              <input name="confirm" placeholder={`type ${t.slug} to delete`} required aria-label="confirm slug" autoComplete="off" />
              <button className="danger" disabled={remove.isPending}>
                Delete team
              </button>
            </form>
            <p className="muted small">Deleting removes its sessions, agents, sandboxes, secrets, keys and members; its audit log is kept.</p>
            <ErrorNote error={rename.error ?? suspend.error ?? resume.error ?? invite.error ?? remove.error} />
          </div>
        </details>
      </td>
    </tr>
  );
}

export function PlatformAdmins() {
  const list = useQuery({ queryKey: ["platform-admins"], queryFn: () => keel.call(api.platform.listAdmins) });
  const grant = useSave("platform-admins", (email: string) => keel.call(api.platform.grantAdmin, { body: { email } }));
  const revoke = useSave("platform-admins", (userId: string) => keel.call(api.platform.revokeAdmin, { params: { userId } }));
  const submit = (e: FormEvent<HTMLFormElement>) => {
    const form = e.currentTarget;
    grant.mutate(String(fields(e).get("email") ?? ""), { onSuccess: () => form.reset() });
  };
  return (
    <section aria-labelledby="padmins-h">
      <h2 id="padmins-h">Platform admins</h2>
      <QueryState q={list}>
        <ul>
          {list.data?.admins.map((a) => (
            <li key={a.userId} className="row">
              {a.email}
              <button className="secondary" disabled={revoke.isPending} aria-label={`revoke platform admin ${a.email}`} onClick={() => revoke.mutate(a.userId)}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      </QueryState>
      <form className="row" onSubmit={submit} aria-label="grant platform admin">
        <input name="email" type="email" placeholder="email of an existing user" required aria-label="platform admin email" />
        <button disabled={grant.isPending}>Make platform admin</button>
      </form>
      <ErrorNote error={grant.error ?? revoke.error} />
    </section>
  );
}
