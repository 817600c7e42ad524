// The one interface every sandbox driver implements (local bubblewrap: local-driver.ts; Kubernetes
// agent-sandbox: k8s/driver.ts). A sandbox belongs to a session, not to a worker: `acquire` from any
// worker process returns the session's sandbox, reattaching to it (or restarting its runtime
// from the persisted workspace) when another worker made it.
import type { ExecResult as RuntimeExecResult } from "@keel/sandbox/protocol";
import type { SandboxPolicy } from "./policy.js";

/**
 * requested ──▶ provisioning ──▶ ready ◀──▶ suspended
 *                    │             │            │
 *                    ▼             ▼            ▼
 *                  failed ──────▶ terminated ◀──┘   (release, TTL, orphan)
 * A failed sandbox is retried by the next acquire (provisioning again); terminated is final:
 * the next acquire for the session makes a new, empty sandbox.
 */
import type { SandboxState } from "../contract/vocabulary.js";
export { SANDBOX_STATES, type SandboxState } from "../contract/vocabulary.js";

export type SandboxHandle = {
  sandboxId: string;
  teamId: string;
  sessionId: string;
  driver: string;
};

export type SandboxInfo = SandboxHandle & {
  state: SandboxState;
  createdAt: Date;
  /** Last exec or file call, or the runtime's own idle clock when it is running. */
  lastActiveAt: Date;
  idleTimeoutMs: number;
  ttlMs: number;
  /** Calls in progress (a running command): such a sandbox is never idle. */
  inFlight?: number;
  lastError?: string;
};

/** The already-decrypted secrets the policy exposes, name → value. Never logged. */
export type SandboxSecrets = Record<string, string>;

export type ExecRequest = {
  /** A string for `sh -c`, or an argv array. */
  command: string | string[];
  timeoutMs?: number;
  maxOutputBytes?: number;
  cwd?: string;
  env?: Record<string, string>;
  /** The tool call's key: a repeated key returns the recorded result without running again. */
  idempotencyKey?: string;
  /** The run's fencing epoch; a lower epoch than the highest seen for fenceKey is refused. */
  epoch?: bigint | number;
  /** What the epoch counts (the run id). */
  fenceKey?: string;
  onOutput?: (stream: "stdout" | "stderr", chunk: string) => void;
  signal?: AbortSignal;
};

/** The runtime's exec result (one definition of the wire format, in sandbox/src/ledger.ts). */
export type ExecResult = RuntimeExecResult & {
  /** The runtime answered from its record of this idempotency key; nothing ran again. */
  replayed?: boolean;
};

export type FileContent = { path: string; content: string; encoding: "utf8" | "base64"; sizeBytes: number; truncated: boolean };
export type FileEntry = { path: string; type: "file" | "directory" | "symlink" | "other"; sizeBytes: number };
export type Fence = { epoch?: bigint | number; fenceKey?: string; signal?: AbortSignal };

export type DriverHealth = { ok: boolean; driver: string; message: string; details?: Record<string, unknown> };

export interface SandboxDriver {
  readonly name: string;
  /** The session's sandbox, ready to use: created, reattached, resumed or restarted as needed. */
  acquire(sessionId: string, teamId: string, policy: SandboxPolicy, secrets?: SandboxSecrets): Promise<SandboxHandle>;
  exec(h: SandboxHandle, req: ExecRequest): Promise<ExecResult>;
  readFile(h: SandboxHandle, path: string, opts?: { maxBytes?: number; signal?: AbortSignal }): Promise<FileContent>;
  writeFile(h: SandboxHandle, path: string, content: string, opts?: Fence & { encoding?: "utf8" | "base64" }): Promise<{ path: string; sizeBytes: number }>;
  listFiles(
    h: SandboxHandle,
    path: string,
    opts?: { recursive?: boolean; maxEntries?: number; signal?: AbortSignal },
  ): Promise<{ entries: FileEntry[]; truncated: boolean }>;
  /** Stop the runtime, keep the workspace. The next acquire resumes. */
  suspend(h: SandboxHandle): Promise<void>;
  /** Start a suspended sandbox again (secrets are not persisted, so the caller passes them). */
  resume(h: SandboxHandle, policy: SandboxPolicy, secrets?: SandboxSecrets): Promise<void>;
  /** Stop everything and delete the workspace: the sandbox is terminated. */
  release(h: SandboxHandle): Promise<void>;
  list(filter?: { teamId?: string }): Promise<SandboxInfo[]>;
  health(): Promise<DriverHealth>;
  /**
   * Drivers that keep per-team resources (Kubernetes: a namespace): the teams that have some, and
   * removing everything of one team. The reaper removes what deleted teams left.
   */
  teamsWithResources?(): Promise<string[]>;
  removeTeam?(teamId: string): Promise<void>;
}
