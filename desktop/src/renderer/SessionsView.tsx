// Sessions of a Keel web process: connect with a URL and an API key (main keeps the key), list
// sessions page by page, open one to read its whole log and follow it live.
import { useState } from "react";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import type { KeelConnection } from "../shared/contract.ts";
import { call } from "./api.ts";
import { SessionDetail } from "./SessionDetail.tsx";
import { Empty, ErrorBox, Loading, since } from "./ui.tsx";

const PAGE = 20;

// Per context, for this window's life: switching tabs keeps the connection (and its port-forward).
type Conn = KeelConnection & { forwardId?: string };
const connections = new Map<string, Conn>();

/** Closes a context's connection and its port-forward (a context switch). */
export function dropConnection(context: string): void {
  const c = connections.get(context);
  if (!c) return;
  connections.delete(context);
  void call("sessions:disconnect", { connection: c.id }).catch(() => {});
  if (c.forwardId) void call("keel:portforward:stop", { forwardId: c.forwardId }).catch(() => {});
}

/** The launcher's handed-over connection becomes its context's (LocalEnvView). */
export function adoptConnection(context: string, c: KeelConnection): void {
  if (connections.get(context)?.id !== c.id) connections.set(context, c);
}

export function SessionsView({ context }: { context: string }) {
  const [conn, setConn] = useState<Conn | null>(connections.get(context) ?? null);
  const [open, setOpen] = useState<string | null>(null);
  if (!conn) return <ConnectForm context={context} onConnected={(c) => (connections.set(context, c), setConn(c))} />;
  return (
    <div className="sessions">
      <div className="connbar">
        <span className="muted small">
          {conn.baseUrl}
          {conn.forwardId ? ` (port-forward to keel/keel-web in ${context})` : ""} · {conn.actor} ({conn.role})
        </span>
        <button
          className="secondary"
          onClick={() => {
            dropConnection(context);
            setConn(null);
            setOpen(null);
          }}
        >
          Disconnect
        </button>
      </div>
      <div className="split">
        <SessionList context={context} conn={conn} open={open} onOpen={setOpen} />
        <div className="detail">
          {open ? (
            <SessionDetail key={open} context={context} conn={conn} sessionId={open} />
          ) : (
            <Empty>Pick a session to see its history and follow it live.</Empty>
          )}
        </div>
      </div>
    </div>
  );
}

function ConnectForm({ context, onConnected }: { context: string; onConnected: (c: Conn) => void }) {
  const [baseUrl, setBaseUrl] = useState("http://127.0.0.1:3000");
  const [apiKey, setApiKey] = useState("");
  const connect = useMutation({
    mutationFn: async (via: "url" | "cluster"): Promise<Conn> => {
      if (via === "url") return call("sessions:connect", { baseUrl: baseUrl.trim(), apiKey: apiKey.trim() });
      // Through the Kubernetes API: forward a local port to keel/keel-web, then connect to it.
      const fwd = await call("keel:portforward:start", { context });
      try {
        return { ...(await call("sessions:connect", { baseUrl: fwd.baseUrl, apiKey: apiKey.trim() })), forwardId: fwd.forwardId };
      } catch (err) {
        void call("keel:portforward:stop", { forwardId: fwd.forwardId });
        throw err;
      }
    },
    onSuccess: onConnected,
  });
  return (
    <form
      className="card connect"
      onSubmit={(e) => {
        e.preventDefault();
        connect.mutate("url");
      }}
    >
      <h2>Connect to Keel</h2>
      <p className="muted">
        An API key from the dashboard (Settings → API keys), and either the web process's URL or the selected context: the app then forwards a local port to
        keel/keel-web through the Kubernetes API.
      </p>
      <label className="field">
        <span>URL</span>
        <input aria-label="Keel URL" value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} />
      </label>
      <label className="field">
        <span>API key</span>
        <input aria-label="API key" type="password" autoComplete="off" value={apiKey} onChange={(e) => setApiKey(e.target.value)} placeholder="kk_…" />
      </label>
      <div className="row">
        <button type="submit" disabled={connect.isPending || !apiKey.trim()}>
          {connect.isPending && connect.variables === "url" ? "Connecting…" : "Connect"}
        </button>
        <button type="button" className="secondary" disabled={connect.isPending || !apiKey.trim()} onClick={() => connect.mutate("cluster")}>
          {connect.isPending && connect.variables === "cluster" ? "Forwarding…" : `Connect through ${context}`}
        </button>
      </div>
      {connect.isError && <ErrorBox error={connect.error} />}
    </form>
  );
}

function SessionList({ context, conn, open, onOpen }: { context: string; conn: KeelConnection; open: string | null; onOpen: (id: string) => void }) {
  const [status, setStatus] = useState<"" | "active" | "idle" | "archived">("");
  const list = useInfiniteQuery({
    queryKey: [context, "sessions", conn.id, status],
    queryFn: ({ pageParam }) =>
      call("sessions:list", { connection: conn.id, limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}), ...(status ? { status } : {}) }),
    initialPageParam: "",
    getNextPageParam: (last) => last.nextCursor ?? undefined,
    refetchInterval: 5_000,
  });
  const sessions = list.data?.pages.flatMap((p) => p.sessions) ?? [];
  return (
    <section className="card list" aria-label="sessions">
      <div className="row">
        <h2>Sessions</h2>
        <select aria-label="session status" value={status} onChange={(e) => setStatus(e.target.value as typeof status)}>
          <option value="">active + idle</option>
          <option value="active">active</option>
          <option value="idle">idle</option>
          <option value="archived">archived</option>
        </select>
      </div>
      {list.isPending ? (
        <Loading what="sessions" />
      ) : list.isError ? (
        <ErrorBox error={list.error} />
      ) : sessions.length === 0 ? (
        <Empty>No sessions yet.</Empty>
      ) : (
        <ul className="sessionlist">
          {sessions.map((s) => (
            <li key={s.id}>
              <button className={`sessionitem ${open === s.id ? "selected" : ""}`} data-session={s.id} onClick={() => onOpen(s.id)}>
                <span className="title">{s.title || "(untitled)"}</span>
                <span className="muted small">
                  {s.agentName} · {s.lastSeq} events · {since(s.updatedAt)} ago
                </span>
                <span className={`badge st-${s.activeRun?.status ?? s.status}`}>{s.activeRun?.status ?? s.status}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {list.hasNextPage && (
        <button className="secondary" disabled={list.isFetchingNextPage} onClick={() => void list.fetchNextPage()}>
          {list.isFetchingNextPage ? "Loading…" : "Load more"}
        </button>
      )}
    </section>
  );
}
