// Sessions of a Keel web process: connect with a URL and an API key (main keeps the key), list
// sessions page by page, open one to read its whole log and follow it live.
import { useState } from "react";
import { useInfiniteQuery, useMutation } from "@tanstack/react-query";
import type { KeelConnection } from "../shared/contract.ts";
import { call } from "./api.ts";
import { SessionDetail } from "./SessionDetail.tsx";
import { Empty, ErrorBox, Loading, since } from "./ui.tsx";

const PAGE = 20;

// Per context, for this window's life: switching tabs keeps the connection.
const connections = new Map<string, KeelConnection>();

export function SessionsView({ context }: { context: string }) {
  const [conn, setConn] = useState<KeelConnection | null>(connections.get(context) ?? null);
  const [open, setOpen] = useState<string | null>(null);
  if (!conn) return <ConnectForm onConnected={(c) => (connections.set(context, c), setConn(c))} />;
  return (
    <div className="sessions">
      <div className="connbar">
        <span className="muted small">
          {conn.baseUrl} · {conn.actor} ({conn.role})
        </span>
        <button
          className="secondary"
          onClick={() => {
            void call("sessions:disconnect", { connection: conn.id });
            connections.delete(context);
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
          {open ? <SessionDetail key={open} context={context} conn={conn} sessionId={open} /> : <Empty>Pick a session to see its history and follow it live.</Empty>}
        </div>
      </div>
    </div>
  );
}

function ConnectForm({ onConnected }: { onConnected: (c: KeelConnection) => void }) {
  const [baseUrl, setBaseUrl] = useState("http://127.0.0.1:3000");
  const [apiKey, setApiKey] = useState("");
  const connect = useMutation({ mutationFn: () => call("sessions:connect", { baseUrl: baseUrl.trim(), apiKey: apiKey.trim() }), onSuccess: onConnected });
  return (
    <form
      className="card connect"
      onSubmit={(e) => {
        e.preventDefault();
        connect.mutate();
      }}
    >
      <h2>Connect to Keel</h2>
      <p className="muted">The web process's URL (or the local end of a port-forward to keel-web) and an API key from Settings → API keys.</p>
      <label className="field">
        <span>URL</span>
        <input aria-label="Keel URL" value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} />
      </label>
      <label className="field">
        <span>API key</span>
        <input aria-label="API key" type="password" autoComplete="off" value={apiKey} onChange={(e) => setApiKey(e.target.value)} placeholder="kk_…" />
      </label>
      <button type="submit" disabled={connect.isPending || !apiKey.trim()}>
        {connect.isPending ? "Connecting…" : "Connect"}
      </button>
      {connect.isError && <ErrorBox error={connect.error} />}
    </form>
  );
}

function SessionList({ context, conn, open, onOpen }: { context: string; conn: KeelConnection; open: string | null; onOpen: (id: string) => void }) {
  const [status, setStatus] = useState<"" | "active" | "idle" | "archived">("");
  const list = useInfiniteQuery({
    queryKey: [context, "sessions", conn.id, status],
    queryFn: ({ pageParam }) => call("sessions:list", { connection: conn.id, limit: PAGE, ...(pageParam ? { cursor: pageParam } : {}), ...(status ? { status } : {}) }),
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
