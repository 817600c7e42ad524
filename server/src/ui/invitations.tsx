"use client";
// Invitations by link (team admins): the link is shown once (the token is stored hashed), the
// pending ones are listed and can be withdrawn. The invitee opens /invite#<token>.
import { useQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import type { Role } from "@keel/core/contract/api-schemas";
import { api, keel, when } from "./api";
import { useSave } from "./settings";
import { ErrorNote, QueryState, TableBox } from "./shell";

const ROLES = ["admin", "member", "viewer"] as const;

/** The link an invitation token opens: the token rides in the fragment, which browsers never send to a server. */
export const inviteLink = (token: string) => `${location.origin}/invite#${token}`;

/** The link of a just-created invitation, shown once. */
export function NewInvitation({ link, email, onDone }: { link: string; email: string; onDone: () => void }) {
  return (
    <div className="card notice" role="status" data-testid="new-invitation">
      <p>
        Invitation for <strong>{email}</strong>: send this link; it works once and is not shown again.
      </p>
      <div className="row">
        <code className="secret">{link}</code>
        <button type="button" className="secondary" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

/** The invite form: email and role. */
export function InviteForm({
  label,
  busy,
  onInvite,
}: {
  label: string;
  busy: boolean;
  onInvite: (v: { email: string; role: Role }, reset: () => void) => void;
}) {
  const submit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    onInvite({ email: String(f.get("email") ?? ""), role: String(f.get("role")) as Role }, () => form.reset());
  };
  return (
    <form className="row" onSubmit={submit} aria-label={label}>
      <input name="email" type="email" placeholder="email" required aria-label="invite email" />
      <select name="role" defaultValue="member" aria-label="invite role">
        {ROLES.map((r) => (
          <option key={r}>{r}</option>
        ))}
      </select>
      <button disabled={busy}>Invite</button>
    </form>
  );
}

export function Invitations() {
  const list = useQuery({ queryKey: ["invitations"], queryFn: () => keel.call(api.invitations.list) });
  const [created, setCreated] = useState<{ link: string; email: string } | null>(null);
  const create = useSave("invitations", (body: { email: string; role: Role }) => keel.call(api.invitations.create, { body }));
  const revoke = useSave("invitations", (id: string) => keel.call(api.invitations.revoke, { params: { id } }));
  return (
    <section aria-labelledby="invitations-h">
      <h2 id="invitations-h">Invitations</h2>
      {created && <NewInvitation {...created} onDone={() => setCreated(null)} />}
      <InviteForm
        label="invite someone"
        busy={create.isPending}
        onInvite={(v, reset) => create.mutate(v, { onSuccess: (r) => (setCreated({ link: inviteLink(r.token), email: r.email }), reset()) })}
      />
      <QueryState q={list} empty={list.data?.invitations.length === 0} emptyText="No pending invitations.">
        <TableBox>
          <table>
            <thead>
              <tr>
                <th>Email</th>
                <th>Role</th>
                <th>Expires</th>
                <th>By</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.data?.invitations.map((i) => (
                <tr key={i.id} data-invitation={i.email}>
                  <td>{i.email}</td>
                  <td>{i.role}</td>
                  <td className={i.expired ? "error" : "muted"}>{i.expired ? "expired" : when(i.expiresAt)}</td>
                  <td className="muted">{i.createdBy}</td>
                  <td>
                    <button className="secondary" disabled={revoke.isPending} aria-label={`withdraw ${i.email}`} onClick={() => revoke.mutate(i.id)}>
                      Withdraw
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      </QueryState>
      <ErrorNote error={create.error ?? revoke.error} />
    </section>
  );
}
