// A session's sandbox as the dashboard and the REST API show it: state, driver, policy summary,
// and read-only file browsing, through the SandboxDriver interface (local or Kubernetes alike).
// Every call is scoped by team: another team's session is "not found", exactly like a missing one.
// Nothing here wakes a sandbox: files are read only from a ready one; `start` is the one call that
// acquires (a suspended sandbox resumes, a missing or terminated one is created), and only when a
// member asks. With `remote` (the web on Kubernetes) files and start run in a worker (relay.ts);
// everything else here reads only the database.
import { ConflictError, KeelError, NotFoundError, ValidationError } from "../errors.js";
import { isUuid } from "../engine/client.js";
import type { Queryable } from "../db/pool.js";
import { actingTeam, auditedBy, type Acting } from "../access/principal.js";
import { audit } from "../audit.js";
import type { FileEntry, SandboxDriver, SandboxHandle, SandboxState } from "./driver.js";
import { SandboxRequestError, SandboxUnavailableError } from "./errors.js";
import { exposedSecrets, parseSandboxPolicy, type SandboxPolicy } from "./policy.js";
import type { SandboxRow, SandboxStore } from "./store.js";
import type { ResolveSandboxPolicy } from "./tools.js";

/** The calls `remote` runs in a worker (relay.ts carries them through the database). */
export type RelayOp = "list" | "read" | "start";
export type RelayArgs = { path?: string; maxEntries?: number; maxBytes?: number };

/** What SessionSandboxes needs to run a call elsewhere (the web's side of the relay). */
export interface SandboxRemote {
  /** The driver the workers run (a sandbox row made by another driver is not theirs to read). */
  readonly driverName: string;
  call(op: RelayOp, teamId: string, sessionId: string, args?: RelayArgs): Promise<unknown>;
}

export type SandboxPolicySummary = Pick<SandboxPolicy, "template" | "resources" | "secrets" | "idleTimeoutMs" | "ttlMs"> & { egress: "none" | string[] };

export type SessionSandboxView = {
  sessionId: string;
  /** The session's live sandbox, else its last terminated one, else null (none was ever made). */
  sandbox: (Omit<SandboxRow, "teamId" | "sessionId"> & { createdAt: Date; terminatedAt: Date | null }) | null;
  policy: SandboxPolicySummary | null;
  /** Why the agent's sandbox policy could not be read (it is then shown as null). */
  policyError?: string;
  /** Files can be listed and read now, without waking anything. */
  filesAvailable: boolean;
  /** One sentence for a person: what state the sandbox is in and what that means. */
  note: string;
};

export type SandboxFileView = { path: string; sizeBytes: number; truncated: boolean; maxBytes: number } & (
  { binary: false; content: string } | { binary: true; content: null }
);

const NOTES: Record<SandboxState, string> = {
  requested: "The sandbox has been requested and is being set up.",
  provisioning: "The sandbox is starting.",
  ready: "The sandbox is running.",
  suspended:
    "The sandbox is suspended (idle): it is not running, so its files cannot be browsed until it is started again. The agent's next tool call resumes it.",
  failed: "The sandbox failed to start; the agent's next tool call retries.",
  terminated: "The sandbox was terminated (released, expired or orphaned) and its files are gone. The agent's next tool call makes a new, empty one.",
};

export class SessionSandboxes {
  constructor(
    private readonly o: {
      db: Queryable;
      store: SandboxStore;
      /** The driver this process uses; a function so a misconfigured driver fails only these calls. */
      driver?: () => SandboxDriver;
      /** Run files and start in a worker instead (the web on Kubernetes holds no cluster access). */
      remote?: SandboxRemote;
      /** For `start`: the session's policy and team secrets (as the worker's sandbox tools get them). */
      resolvePolicy?: ResolveSandboxPolicy;
    },
  ) {}

  async describe(teamId: string, sessionId: string): Promise<SessionSandboxView> {
    const session = await this.session(teamId, sessionId);
    const row = await this.o.store.latestForSession(teamId, sessionId);
    let policy: SandboxPolicySummary | null = null;
    let policyError: string | undefined;
    try {
      const p = parseSandboxPolicy(session.sandboxPolicy);
      policy = {
        template: p.template,
        resources: p.resources,
        egress: p.egress === "none" ? "none" : p.egress.allow,
        secrets: p.secrets,
        idleTimeoutMs: p.idleTimeoutMs,
        ttlMs: p.ttlMs,
      };
    } catch (err) {
      policyError = `the agent's sandbox policy is invalid: ${(err as Error).message}`;
    }
    const { name: driverName, error: driverError } = this.driverInfo();
    let note = row ? NOTES[row.state] : "No sandbox yet: one is created when the agent first uses a sandbox tool (exec, read_file, write_file, list_files).";
    if (row && row.state !== "terminated" && driverError) note = `${NOTES[row.state]} Its files cannot be shown: ${driverError}`;
    else if (row && row.state !== "terminated" && row.driver !== driverName)
      note = `This sandbox was made by the ${row.driver} driver; this web process uses ${driverName}, so its files cannot be shown here.`;
    const sandbox = row
      ? {
          id: row.id,
          driver: row.driver,
          state: row.state,
          lastError: row.lastError,
          lastActiveAt: row.lastActiveAt,
          createdAt: row.createdAt!,
          updatedAt: row.updatedAt,
          terminatedAt: row.terminatedAt ?? null,
        }
      : null;
    return { sessionId, sandbox, policy, ...(policyError ? { policyError } : {}), filesAvailable: row?.state === "ready" && row.driver === driverName, note };
  }

  async listFiles(
    teamId: string,
    sessionId: string,
    path: string,
    opts: { maxEntries?: number; signal?: AbortSignal } = {},
  ): Promise<{ path: string; entries: FileEntry[]; truncated: boolean }> {
    const h = await this.readyHandle(teamId, sessionId);
    if (this.o.remote)
      return (await this.o.remote.call("list", teamId, sessionId, { path, ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}) })) as {
        path: string;
        entries: FileEntry[];
        truncated: boolean;
      };
    const r = await this.viaDriver(() =>
      this.driver().listFiles(h, path, { recursive: false, maxEntries: opts.maxEntries ?? 1000, ...(opts.signal ? { signal: opts.signal } : {}) }),
    );
    // Directories first, then by name: what a file browser shows.
    const entries = [...r.entries].sort((a, b) => Number(b.type === "directory") - Number(a.type === "directory") || a.path.localeCompare(b.path));
    return { path, entries, truncated: r.truncated };
  }

  /** A file's text (read-only), or a note that it is binary; at most maxBytes of it. */
  async readFile(teamId: string, sessionId: string, path: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<SandboxFileView> {
    const maxBytes = opts.maxBytes ?? 256 * 1024;
    const h = await this.readyHandle(teamId, sessionId);
    if (this.o.remote) return (await this.o.remote.call("read", teamId, sessionId, { path, maxBytes })) as SandboxFileView;
    const f = await this.viaDriver(() => this.driver().readFile(h, path, { maxBytes, ...(opts.signal ? { signal: opts.signal } : {}) }));
    const base = { path, sizeBytes: f.sizeBytes, truncated: f.truncated, maxBytes };
    return f.encoding === "utf8" ? { ...base, binary: false, content: f.content } : { ...base, binary: true, content: null };
  }

  /**
   * Acquire the session's sandbox: resume it, restart it, or create a new one. Member-initiated
   * only: `by` is the member's principal (role checked, `sandbox.start` audited), or a team id for
   * the operator's own calls (the worker serving a relayed start the web has audited).
   */
  async start(by: Acting, sessionId: string): Promise<SessionSandboxView> {
    const teamId = actingTeam(by, "member");
    const session = await this.session(teamId, sessionId);
    // The reaper removes an archived session's sandbox as an orphan: do not start one for it.
    if (session.status === "archived") throw new ConflictError("session_archived", "the session is archived: unarchive it to start its sandbox");
    if (this.o.remote) {
      await this.o.remote.call("start", teamId, sessionId);
    } else {
      if (!this.o.resolvePolicy) throw new SandboxUnavailableError("this process cannot start sandboxes");
      const { policy, secrets } = await this.o.resolvePolicy(teamId, sessionId);
      await this.driver().acquire(sessionId, teamId, policy, exposedSecrets(policy, secrets));
    }
    const view = await this.describe(teamId, sessionId);
    // The one audited write that cannot share a transaction with its change: the change is a
    // driver call (a process or a pod), not a row. Recorded once the sandbox is there, with its id.
    const p = auditedBy(by);
    if (p) await audit(this.o.db, p, "sandbox.start", sessionId, { sandboxId: view.sandbox?.id ?? null });
    return view;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  private async session(teamId: string, sessionId: string): Promise<{ sandboxPolicy: unknown; status: string }> {
    if (!isUuid(sessionId)) throw new NotFoundError("Session", sessionId);
    const { rows } = await this.o.db.query<{ sandbox_policy: unknown; status: string }>(
      `SELECT av.sandbox_policy, s.status FROM sessions s JOIN agent_versions av ON av.agent_id = s.agent_id AND av.version = s.agent_version
       WHERE s.id = $1 AND s.team_id = $2 AND s.deleted_at IS NULL`,
      [sessionId, teamId],
    );
    if (!rows[0]) throw new NotFoundError("Session", sessionId);
    return { sandboxPolicy: rows[0].sandbox_policy ?? {}, status: rows[0].status };
  }

  private async readyHandle(teamId: string, sessionId: string): Promise<SandboxHandle> {
    await this.session(teamId, sessionId);
    const row = await this.o.store.latestForSession(teamId, sessionId);
    if (!row) throw new ConflictError("sandbox_not_running", "this session has no sandbox yet", { state: null });
    if (row.state !== "ready") throw new ConflictError("sandbox_not_running", `the sandbox is ${row.state}: ${NOTES[row.state]}`, { state: row.state });
    const { name: driverName, error: driverError } = this.driverInfo();
    if (driverError) throw new SandboxUnavailableError(driverError);
    if (row.driver !== driverName)
      throw new SandboxUnavailableError(`the sandbox was made by the ${row.driver} driver; this process uses ${driverName}`, { driver: row.driver });
    return { sandboxId: row.id, teamId, sessionId, driver: row.driver };
  }

  /** The runtime's refusals of the caller's input (bad path, missing file) pass through; anything else is "unavailable". */
  private async viaDriver<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof SandboxRequestError && [400, 404, 413, 422].includes(err.status)) throw err;
      if (err instanceof SandboxUnavailableError) throw err;
      if (err instanceof KeelError && err.status < 500 && err.status !== 401 && err.status !== 403) throw err;
      throw new SandboxUnavailableError(`the sandbox did not answer: ${(err as Error).message}`, {}, { cause: err });
    }
  }

  private driver(): SandboxDriver {
    if (!this.o.driver) throw new SandboxUnavailableError("this process has no sandbox driver");
    return this.o.driver();
  }

  private driverInfo(): { name?: string; error?: string } {
    if (this.o.remote) return { name: this.o.remote.driverName };
    try {
      return { name: this.driver().name };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
}

/** The policy resolver the worker's sandbox tools and `SessionSandboxes.start` share. */
export function sessionPolicyResolver(
  db: Queryable,
  secrets: { resolve(teamId: string, names: readonly string[]): Promise<Record<string, string>> },
): ResolveSandboxPolicy {
  return async (teamId, sessionId) => {
    const { rows } = await db.query<{ sandbox_policy: unknown }>(
      `SELECT av.sandbox_policy FROM sessions s JOIN agent_versions av ON av.agent_id = s.agent_id AND av.version = s.agent_version WHERE s.id = $1 AND s.team_id = $2`,
      [sessionId, teamId],
    );
    if (!rows[0]) throw new NotFoundError("Session", sessionId);
    let policy: SandboxPolicy;
    try {
      policy = parseSandboxPolicy(rows[0].sandbox_policy ?? {});
    } catch (err) {
      throw new ValidationError(`the agent's sandbox policy is invalid: ${(err as Error).message}`);
    }
    return { policy, secrets: await secrets.resolve(teamId, policy.secrets) };
  };
}
