"use client";
// The session's sandbox: state, driver, policy summary and a read-only file browser. Looking
// never wakes the sandbox (a suspended or terminated one says so); "Start sandbox" does, on request.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, ApiError, keel, when } from "@/src/ui/api";
import { ErrorNote } from "@/src/ui/shell";

type View = {
  sandbox: { id: string; driver: string; state: string; lastError: string | null; lastActiveAt: string; createdAt: string; terminatedAt: string | null } | null;
  policy: {
    template: string;
    egress: "none" | string[];
    secrets: string[];
    resources: { cpuSeconds: number; memoryMb: number; maxProcesses: number; maxFileSizeMb: number };
    idleTimeoutMs: number;
    ttlMs: number;
  } | null;
  policyError?: string;
  filesAvailable: boolean;
  note: string;
};
type Entry = { path: string; type: string; sizeBytes: number };
type FileView = { path: string; sizeBytes: number; truncated: boolean; maxBytes: number; binary: boolean; content: string | null };

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const duration = (ms: number) => (ms % 3_600_000 === 0 ? `${ms / 3_600_000} h` : ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 1000)} s`);
const parent = (p: string) => (p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : ".");
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** `version` changes when the session's log grows, so state and files refresh as the agent works. */
export function SandboxPanel({ sessionId, version }: { sessionId: string; version: number }) {
  const qc = useQueryClient();
  const [dir, setDir] = useState(".");
  const [open, setOpen] = useState<string | null>(null);
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<Error | null>(null);
  const view = useQuery({ queryKey: ["sandbox", sessionId], queryFn: () => keel.call(api.sandbox.get, { params: { id: sessionId } }) });
  const ready = view.data?.filesAvailable === true;
  const files = useQuery({
    queryKey: ["sandbox", sessionId, "dir", dir],
    enabled: ready,
    queryFn: () => keel.call(api.sandbox.files, { params: { id: sessionId }, query: { path: dir } }),
  });
  const file = useQuery({
    queryKey: ["sandbox", sessionId, "file", open],
    enabled: ready && open !== null,
    queryFn: () => keel.call(api.sandbox.file, { params: { id: sessionId }, query: { path: open! } }),
  });
  useEffect(() => void qc.invalidateQueries({ queryKey: ["sandbox", sessionId] }), [qc, sessionId, version]);

  const start = async () => {
    setStarting(true);
    setStartError(null);
    try {
      await keel.call(api.sandbox.start, { params: { id: sessionId } });
    } catch (e) {
      setStartError(e as Error);
    }
    setStarting(false);
    void qc.invalidateQueries({ queryKey: ["sandbox", sessionId] });
  };

  const v = view.data;
  const p = v?.policy;
  return (
    <section className="card sandbox" aria-label="Sandbox" data-testid="sandbox">
      <div className="row">
        <h2 style={{ margin: 0 }}>Sandbox</h2>
        {v?.sandbox && (
          <span className={`badge ${v.sandbox.state}`} data-testid="sandbox-state">
            {v.sandbox.state}
          </span>
        )}
        {v?.sandbox && (
          <span className="muted small">
            driver {v.sandbox.driver} · created {when(v.sandbox.createdAt)} · last active {when(v.sandbox.lastActiveAt)}
          </span>
        )}
        <button className="secondary" onClick={() => void qc.invalidateQueries({ queryKey: ["sandbox", sessionId] })}>
          Refresh
        </button>
        {v && (!ready || (files.error instanceof ApiError && files.error.status === 503)) && (
          <button className="secondary" disabled={starting} onClick={() => void start()}>
            {starting ? "Starting…" : v.sandbox && v.sandbox.state !== "terminated" ? "Start sandbox" : "Create sandbox"}
          </button>
        )}
      </div>
      {view.isPending && (
        <p className="muted" role="status">
          Loading…
        </p>
      )}
      <ErrorNote error={view.error} prefix="Could not load the sandbox" />
      <ErrorNote error={startError} prefix="Could not start the sandbox" />
      {v && (
        <p className={v.sandbox ? "muted" : "muted empty"} data-testid="sandbox-note">
          {v.note}
        </p>
      )}
      {v?.sandbox?.lastError && <p className="error small">{v.sandbox.lastError}</p>}
      {p && (
        <p className="small" data-testid="sandbox-policy">
          Egress: {p.egress === "none" ? "none (no network)" : `only ${p.egress.join(", ")}`} · CPU {p.resources.cpuSeconds} s, memory {p.resources.memoryMb}{" "}
          MB, {p.resources.maxProcesses} processes, files ≤ {p.resources.maxFileSizeMb} MB · secrets: {p.secrets.length ? p.secrets.join(", ") : "none"} ·
          suspends after {duration(p.idleTimeoutMs)} idle, terminated after {duration(p.ttlMs)}
          {p.template !== "default" && <> · template {p.template}</>}
        </p>
      )}
      {v?.policyError && <p className="error small">{v.policyError}</p>}
      {ready && (
        <div data-testid="sandbox-files">
          <p className="small mono">
            <a
              href="#"
              onClick={(e) => {
                e.preventDefault();
                setDir(".");
                setOpen(null);
              }}
            >
              /workspace
            </a>
            {dir !== "." &&
              dir.split("/").map((part, i, all) => {
                const to = all.slice(0, i + 1).join("/");
                return (
                  <span key={to}>
                    {" "}
                    /{" "}
                    <a
                      href="#"
                      onClick={(e) => {
                        e.preventDefault();
                        setDir(to);
                        setOpen(null);
                      }}
                    >
                      {part}
                    </a>
                  </span>
                );
              })}
          </p>
          <ErrorNote error={files.error} prefix="Could not list files" />
          {files.data && files.data.entries.length === 0 && <p className="muted empty">This directory is empty.</p>}
          {files.data && files.data.entries.length > 0 && (
            <div className="table-box">
              <table>
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Size</th>
                  </tr>
                </thead>
                <tbody>
                  {dir !== "." && (
                    <tr>
                      <td>
                        <a
                          href="#"
                          onClick={(e) => {
                            e.preventDefault();
                            setDir(parent(dir));
                            setOpen(null);
                          }}
                        >
                          ..
                        </a>
                      </td>
                      <td />
                    </tr>
                  )}
                  {files.data.entries.map((e) => (
                    <tr key={e.path} data-file={e.path}>
                      <td className="mono">
                        {e.type === "directory" ? (
                          <a
                            href="#"
                            onClick={(ev) => {
                              ev.preventDefault();
                              setDir(e.path);
                              setOpen(null);
                            }}
                          >
                            {base(e.path)}/
                          </a>
                        ) : e.type === "file" ? (
                          <a
                            href="#"
                            aria-current={open === e.path ? "true" : undefined}
                            onClick={(ev) => {
                              ev.preventDefault();
                              setOpen(e.path);
                            }}
                          >
                            {base(e.path)}
                          </a>
                        ) : (
                          <span>
                            {base(e.path)} <span className="muted">({e.type})</span>
                          </span>
                        )}
                      </td>
                      <td className="nowrap">{e.type === "file" ? size(e.sizeBytes) : ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          {files.data?.truncated && <p className="muted small">Only the first {files.data.entries.length} entries are shown.</p>}
          {open !== null && (
            <div className="file-view" data-testid="file-view" aria-label={`file ${open}`}>
              <p className="small">
                <strong className="mono">{open}</strong> {file.data && <span className="muted">{size(file.data.sizeBytes)} · read-only</span>}
              </p>
              {file.isPending && (
                <p className="muted" role="status">
                  Loading…
                </p>
              )}
              <ErrorNote error={file.error} prefix="Could not open the file" />
              {file.data?.binary && (
                <p className="muted" data-testid="file-note">
                  Binary file ({size(file.data.sizeBytes)}): not shown.
                </p>
              )}
              {file.data && !file.data.binary && (
                <>
                  {file.data.truncated && (
                    <p className="muted small" data-testid="file-note">
                      Large file: showing the first {size(file.data.maxBytes)} of {size(file.data.sizeBytes)}.
                    </p>
                  )}
                  <pre className="args" data-testid="file-content">
                    {file.data.content}
                  </pre>
                </>
              )}
            </div>
          )}
        </div>
      )}
      {view.error instanceof ApiError && view.error.status === 404 && <p className="muted">No such session.</p>}
    </section>
  );
}
