// The one contract between the Electron main process and the renderer (Podman Desktop style).
// Main registers a handler per channel (src/main/ipc.ts), preload exposes `DesktopApi` as one
// frozen object, and the test bridge serves the same interface over HTTP. Everything crossing it
// is structured-clone-safe plain data: no class instances, no Dates (ISO strings instead).
// Imports nothing from Node or Electron so the renderer bundle can import it as-is.
import { z } from "zod";
import type { Delta } from "@keel/core/contract/events";

/** Invoke channels: renderer → main, one request, one Result. */
export const channels = {
  contextsList: "kube:contexts:list",
  contextStatus: "kube:context:status",
  sandboxesList: "sandboxes:list",
  claimCreate: "sandboxes:claim:create",
  claimDelete: "sandboxes:claim:delete",
  warmPoolScale: "sandboxes:warmpool:scale",
  // -- main-process block (desktop-main): kind launcher, watches, suspend/resume, pod events, port-forward
  launcherPrereqs: "launcher:prereqs",
  launcherState: "launcher:state",
  launcherLogs: "launcher:logs",
  launcherStart: "launcher:start",
  launcherCancel: "launcher:cancel",
  launcherRetry: "launcher:retry",
  launcherTeardown: "launcher:teardown",
  watchStart: "sandboxes:watch:start",
  watchStop: "sandboxes:watch:stop",
  sandboxSuspend: "sandboxes:suspend",
  sandboxResume: "sandboxes:resume",
  sandboxEvents: "sandboxes:events",
  portForwardStart: "keel:portforward:start",
  portForwardStop: "keel:portforward:stop",
  // -- renderer (desktop-ui): namespace picker and sessions; payloads at the end of this file --
  namespacesList: "kube:namespaces:list",
  sessionsConnect: "sessions:connect",
  sessionsDisconnect: "sessions:disconnect",
  sessionsList: "sessions:list",
  sessionsHistory: "sessions:history",
  sessionsFollow: "sessions:follow",
  sessionsUnfollow: "sessions:unfollow",
  sessionsDecide: "sessions:decide",
  sessionsPost: "sessions:post",
} as const;
export type Channel = (typeof channels)[keyof typeof channels];

/** Main → renderer pushes (webContents.send). Declared now so handlers and preload agree on names. */
export const events = {
  contextsChanged: "kube:contexts:changed",
  sandboxesChanged: "sandboxes:changed",
  // -- main-process block (desktop-main)
  launcherChanged: "launcher:changed",
  launcherLog: "launcher:log",
  watchStatus: "sandboxes:watch:status",
  portForwardStatus: "keel:portforward:status",
  // -- sessions (desktop-ui) --
  sessionEvent: "sessions:event",
  sessionDelta: "sessions:delta",
  sessionFollowState: "sessions:follow:state",
} as const;
export type EventName = (typeof events)[keyof typeof events];
export interface EventPayloads {
  "kube:contexts:changed": { current: string | null };
  /** row: the object's row as it is now, null when it was deleted (the renderer patches its list with it). */
  "sandboxes:changed": { context: string; kind: SandboxKind; namespace: string; name: string; row: SandboxRow | null };
  // -- sessions (desktop-ui) --
  "sessions:event": { followId: string; sessionId: string; event: KeelEvent };
  "sessions:delta": { followId: string; sessionId: string; runId: string | null; delta: KeelDelta };
  "sessions:follow:state": FollowState;
}

export const errorCodes = [
  "kubeconfig_invalid",
  "context_not_found",
  "unreachable",
  "tls_error",
  "unauthorized",
  /** An exec credential plugin (aws, gke-gcloud-auth-plugin, kubelogin…) could not be run or failed. */
  "credential_plugin_failed",
  "forbidden",
  "agent_sandbox_missing",
  "keel_missing",
  "not_found",
  "conflict",
  "invalid_input",
  "kube_api_error",
  // -- sessions (desktop-ui): the Keel web API. An answer with Keel's error body keeps the
  // server's own code (session_busy, already_decided, unauthorized, …: KeelErrorCode); these are
  // for what has no such body --
  "keel_unreachable",
  "keel_api_error",
  "not_connected",
  "internal",
] as const;
export type ErrorCode = (typeof errorCodes)[number];
/** A Keel server's `error.code`, passed through unchanged (the server's codes are open-ended). */
export type KeelErrorCode = string & {};

/** `status` and `details` come with a Keel server's error: its HTTP status and `error.details`, unchanged. */
export type ErrorInfo = { name: string; code: ErrorCode | KeelErrorCode; message: string; status?: number; details?: Record<string, unknown> };
export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

// ---- payloads ----

export type KubeContext = {
  name: string;
  cluster: string;
  user: string;
  /** Context's default namespace, if the kubeconfig sets one. */
  namespace: string | null;
  server: string | null;
};
export type ContextList = {
  current: string | null;
  contexts: KubeContext[];
  /** Kubeconfig files read, in precedence order (first wins, as with kubectl). */
  files: string[];
};

/** One check: passed, or failed with the message to show the operator. */
export type Check<T = Record<string, never>> = ({ ok: true } & T) | { ok: false; code: ErrorCode; message: string };
export type ContextStatus = {
  context: string;
  server: string | null;
  connection: Check<{ version: string }>;
  /** Skipped (null) when the connection check failed: the answer would only repeat it. */
  agentSandbox: Check | null;
  keel: Check | null;
};

export const sandboxKinds = ["SandboxClaim", "Sandbox", "SandboxTemplate", "SandboxWarmPool"] as const;
export type SandboxKind = (typeof sandboxKinds)[number];
/** A row for the sandboxes table: every kind reduced to status, reason and age. */
export type SandboxRow = {
  kind: SandboxKind;
  namespace: string;
  name: string;
  uid: string;
  /** claims: Keel's sandbox state (requested, provisioning, ready, suspended, failed, terminated);
   * sandboxes: ready / not-ready / suspended; warm pools: ready / scaling; templates: available. */
  status: string;
  /** The Ready condition's reason and message, when there is one. */
  reason: string | null;
  message: string | null;
  createdAt: string | null;
  ageSeconds: number | null;
  /** Claims: Keel's team and session labels (keel.dev/team, keel.dev/session); managedByKeel: Keel's sandbox for a
   *  session (the app warns and will not suspend or delete it while in use); expiresAt: spec.lifecycle.shutdownTime. */
  team?: string | null;
  session?: string | null;
  managedByKeel?: boolean;
  expiresAt?: string | null;
  /** Kind-specific: claim → warm pool and sandbox; warm pool → template and replicas. */
  template?: string | null;
  warmPool?: string | null;
  sandbox?: string | null;
  replicas?: number;
  readyReplicas?: number;
};

// ---- inputs (validated in main: the renderer is not trusted) ----

const dnsLabel = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, "must be a DNS label: 1–63 lowercase letters, digits or '-'");
export const contextInput = z.object({ context: z.string().min(1) });
export const listInput = z.object({ context: z.string().min(1), namespace: dnsLabel.optional() });
export const claimCreateInput = z.object({
  context: z.string().min(1),
  namespace: dnsLabel,
  template: dnsLabel,
  /** Omitted: generated from the template name (in a Keel team namespace always s-desktop-<id>). */
  name: dnsLabel.optional(),
  /** The claim's TTL: the controller deletes it then (default 60 minutes, at most a day). */
  ttlMinutes: z
    .number()
    .int()
    .min(1)
    .max(24 * 60)
    .optional(),
});
export const claimDeleteInput = z.object({ context: z.string().min(1), namespace: dnsLabel, name: dnsLabel });
export const warmPoolScaleInput = z.object({ context: z.string().min(1), namespace: dnsLabel, name: dnsLabel, replicas: z.number().int().min(0).max(1000) });

// ==== main-process block (desktop-main): kind launcher, watches, suspend/resume, pod events,
// port-forward. Channels, events and schemas are listed in the tables above under the same
// heading; Handlers and EventPayloads are extended here through interface merging.

/** kind/up.sh's steps, in order (the script's --list-steps prints the same; a test checks it). */
export const launcherSteps = ["prereqs", "cluster", "agent-sandbox", "build", "load", "apply", "rollout", "port-forward"] as const;
export type LauncherStepName = (typeof launcherSteps)[number];
export type LauncherStepState = "pending" | "running" | "done" | "skipped" | "failed" | "cancelled";
export type LauncherStep = {
  name: LauncherStepName;
  title: string;
  state: LauncherStepState;
  startedAt: string | null;
  /** Set when the step ends; while it runs the UI counts from startedAt. */
  elapsedMs: number | null;
  /** Why it failed or was skipped, in words the operator can act on. */
  message: string | null;
};
export type LauncherStatus = "idle" | "running" | "succeeded" | "failed" | "cancelled" | "tearing-down" | "torn-down";
export type LauncherState = {
  /** Increments on every start, retry and teardown, so events of an old run can be told apart. */
  runId: number;
  status: LauncherStatus;
  steps: LauncherStep[];
  /** The kube context kind creates (kind-<cluster>). */
  context: string;
  /** Open this when status is "succeeded" (the port-forward step is running). */
  dashboardUrl: string | null;
  error: { step: LauncherStepName | "teardown"; message: string } | null;
  /** The dashboard's local port of this run (KEEL_PORT, or the UI's choice). */
  port: number;
  /** The Keel image the last run built or pulled (null before a run). */
  image: string | null;
  /** Whether kind has the cluster (detected at start and after each run); null: not known yet. */
  existingCluster: boolean | null;
  /** The connection handed to the operator after a run: a sessions connection id (an API key made for them), or why not. */
  connection: { id: string | null; baseUrl: string; error: string | null; role?: string; actor?: string; teamId?: string } | null;
};
export type LauncherLogLine = { runId: number; step: LauncherStepName | "teardown"; stream: "stdout" | "stderr"; line: string; at: string };
export type PrereqCheck = {
  id: "docker" | "kind" | "kubectl" | "docker-engine" | "memory" | "port";
  status: "ok" | "failed" | "skipped";
  /** What was found, or what is wrong and how to fix it. */
  message: string;
};
export type PrereqReport = { ok: boolean; checks: PrereqCheck[] };

export type WatchStatus = {
  watchId: string;
  context: string;
  namespace: string | null;
  state: "watching" | "reconnecting" | "stopped";
  /** Reconnect attempts since the last good list. */
  attempt: number;
  /** Why it is reconnecting, as an operator message. */
  message: string | null;
};

/** A core/v1 Event about a sandbox's pod, its Sandbox or its SandboxClaim, newest last. */
export type SandboxEvent = {
  /** involvedObject: Pod, Sandbox or SandboxClaim. */
  kind: string;
  name: string;
  /** Normal or Warning. */
  type: string;
  reason: string | null;
  message: string | null;
  count: number;
  firstSeen: string | null;
  lastSeen: string | null;
  /** The component that reported it (default-scheduler, kubelet, …). */
  source: string | null;
};

export type PortForwardInfo = {
  forwardId: string;
  context: string;
  namespace: string;
  service: string;
  /** The pod the API server forwards to (a Ready one behind the Service's selector). */
  pod: string;
  /** The container port behind the Service port. */
  targetPort: number;
  localPort: number;
  /** http://127.0.0.1:<localPort>: what the sessions module connects to. */
  baseUrl: string;
};
/** error: one forwarded connection failed (the forward keeps listening); stopped: closed. */
export type PortForwardStatus = { forwardId: string; state: "listening" | "error" | "stopped"; message: string | null };

export const launcherStartInput = z
  .object({
    /** Reuse an existing image (KEEL_SKIP_BUILD=1). */
    skipBuild: z.boolean().optional(),
    /** Build even when the image exists (KEEL_REBUILD=1). */
    rebuild: z.boolean().optional(),
    /** The dashboard's local port (KEEL_PORT). */
    port: z.number().int().min(1024).max(65535).optional(),
  })
  .strict();
export const launcherLogsInput = z.object({ step: z.enum([...launcherSteps, "teardown"]).optional() }).strict();
export const watchStopInput = z.object({ watchId: z.string().min(1) });
/** A SandboxClaim (its Sandbox is found through status.sandbox) or a Sandbox. */
export const sandboxRefInput = z.object({ context: z.string().min(1), namespace: dnsLabel, kind: z.enum(["SandboxClaim", "Sandbox"]), name: dnsLabel });
export const portForwardStartInput = z.object({
  context: z.string().min(1),
  namespace: dnsLabel.default("keel"),
  service: dnsLabel.default("keel-web"),
  /** The Service port. */
  port: z.number().int().min(1).max(65535).default(3000),
  /** 0: any free port. */
  localPort: z.number().int().min(0).max(65535).default(0),
});
export const portForwardStopInput = z.object({ forwardId: z.string().min(1) });
export interface Handlers {
  "launcher:prereqs": () => Promise<PrereqReport>;
  "launcher:state": () => Promise<LauncherState>;
  "launcher:logs": (input: z.infer<typeof launcherLogsInput>) => Promise<LauncherLogLine[]>;
  "launcher:start": (input: z.infer<typeof launcherStartInput>) => Promise<LauncherState>;
  "launcher:cancel": () => Promise<LauncherState>;
  "launcher:retry": () => Promise<LauncherState>;
  "launcher:teardown": () => Promise<LauncherState>;
  /** Lists once (errors here are the context's: not found, unreachable, forbidden), then pushes sandboxes:changed. */
  "sandboxes:watch:start": (input: z.infer<typeof listInput>) => Promise<WatchStatus>;
  "sandboxes:watch:stop": (input: z.infer<typeof watchStopInput>) => Promise<{ stopped: boolean }>;
  /** Sets the Sandbox's operatingMode to Suspended (agent-sandbox deletes the pod) and waits for it. */
  "sandboxes:suspend": (input: z.infer<typeof sandboxRefInput>) => Promise<SandboxRow>;
  /** Sets operatingMode back to Running and waits for the Sandbox to be Ready again. */
  "sandboxes:resume": (input: z.infer<typeof sandboxRefInput>) => Promise<SandboxRow>;
  "sandboxes:events": (input: z.infer<typeof sandboxRefInput>) => Promise<SandboxEvent[]>;
  /** Forwards a local port to Keel's web Service (defaults keel/keel-web:3000) through the API server. */
  "keel:portforward:start": (input: z.input<typeof portForwardStartInput>) => Promise<PortForwardInfo>;
  "keel:portforward:stop": (input: z.infer<typeof portForwardStopInput>) => Promise<{ stopped: boolean }>;
}
export interface EventPayloads {
  "launcher:changed": LauncherState;
  "launcher:log": LauncherLogLine;
  "sandboxes:watch:status": WatchStatus;
  "keel:portforward:status": PortForwardStatus;
}
/** How main-process modules push events (webContents.send in the app, a WebSocket in the bridge). */
export type Emit = <E extends EventName>(event: E, payload: EventPayloads[E]) => void;
// -- desktop-ui inputs (declared before inputSchemas, which uses them) --
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL like http://127.0.0.1:3000" });
const uuid = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, "must be a session id (uuid)");
const seqString = z.string().regex(/^\d{1,19}$/, "must be an event seq");
export const sessionsConnectInput = z.object({ baseUrl: httpUrl, apiKey: z.string().regex(/^kk_\S+$/, "must be a Keel API key (kk_…)") });
export const connectionInput = z.object({ connection: z.string().min(1) });
export const sessionsListInput = z.object({
  connection: z.string().min(1),
  cursor: z.string().max(500).optional(),
  limit: z.number().int().min(1).max(200).optional(),
  status: z.enum(["active", "idle", "archived"]).optional(),
  q: z.string().max(200).optional(),
});
export const sessionRefInput = z.object({ connection: z.string().min(1), sessionId: uuid });
export const sessionsFollowInput = z.object({ connection: z.string().min(1), sessionId: uuid, after: seqString.optional() });
export const followRefInput = z.object({ followId: z.string().min(1) });
export const sessionsDecideInput = z.object({
  connection: z.string().min(1),
  sessionId: uuid,
  callId: z.string().min(1).max(200),
  approve: z.boolean(),
  reason: z.string().max(2000).optional(),
});

export const sessionsPostInput = z.object({
  connection: z.string().min(1),
  sessionId: uuid,
  content: z
    .string()
    .min(1)
    .max(256 * 1024),
  /** What happens when a run is in progress (the server's default: enqueue). */
  onBusy: z.enum(["enqueue", "reject", "interrupt"]).optional(),
});

export const inputSchemas = {
  "kube:contexts:list": z.tuple([]),
  "kube:context:status": z.tuple([contextInput]),
  "sandboxes:list": z.tuple([listInput]),
  "sandboxes:claim:create": z.tuple([claimCreateInput]),
  "sandboxes:claim:delete": z.tuple([claimDeleteInput]),
  "sandboxes:warmpool:scale": z.tuple([warmPoolScaleInput]),
  // -- main-process block (desktop-main)
  "launcher:prereqs": z.tuple([]),
  "launcher:state": z.tuple([]),
  "launcher:logs": z.tuple([launcherLogsInput]),
  "launcher:start": z.tuple([launcherStartInput]),
  "launcher:cancel": z.tuple([]),
  "launcher:retry": z.tuple([]),
  "launcher:teardown": z.tuple([]),
  "sandboxes:watch:start": z.tuple([listInput]),
  "sandboxes:watch:stop": z.tuple([watchStopInput]),
  "sandboxes:suspend": z.tuple([sandboxRefInput]),
  "sandboxes:resume": z.tuple([sandboxRefInput]),
  "sandboxes:events": z.tuple([sandboxRefInput]),
  "keel:portforward:start": z.tuple([portForwardStartInput]),
  "keel:portforward:stop": z.tuple([portForwardStopInput]),
  // -- desktop-ui --
  "kube:namespaces:list": z.tuple([contextInput]),
  "sessions:connect": z.tuple([sessionsConnectInput]),
  "sessions:disconnect": z.tuple([connectionInput]),
  "sessions:list": z.tuple([sessionsListInput]),
  "sessions:history": z.tuple([sessionRefInput]),
  "sessions:follow": z.tuple([sessionsFollowInput]),
  "sessions:unfollow": z.tuple([followRefInput]),
  "sessions:decide": z.tuple([sessionsDecideInput]),
  "sessions:post": z.tuple([sessionsPostInput]),
} as const satisfies Record<Channel, z.ZodTuple>;

/** What main implements for each channel. */
export interface Handlers {
  "kube:contexts:list": () => Promise<ContextList>;
  "kube:context:status": (input: z.infer<typeof contextInput>) => Promise<ContextStatus>;
  "sandboxes:list": (input: z.infer<typeof listInput>) => Promise<SandboxRow[]>;
  "sandboxes:claim:create": (input: z.infer<typeof claimCreateInput>) => Promise<SandboxRow>;
  "sandboxes:claim:delete": (input: z.infer<typeof claimDeleteInput>) => Promise<{ deleted: boolean }>;
  "sandboxes:warmpool:scale": (input: z.infer<typeof warmPoolScaleInput>) => Promise<SandboxRow>;
  // -- desktop-ui --
  "kube:namespaces:list": (input: z.infer<typeof contextInput>) => Promise<NamespaceList>;
  "sessions:connect": (input: z.infer<typeof sessionsConnectInput>) => Promise<KeelConnection>;
  "sessions:disconnect": (input: z.infer<typeof connectionInput>) => Promise<{ disconnected: boolean }>;
  "sessions:list": (input: z.infer<typeof sessionsListInput>) => Promise<SessionPage>;
  "sessions:history": (input: z.infer<typeof sessionRefInput>) => Promise<SessionHistory>;
  "sessions:follow": (input: z.infer<typeof sessionsFollowInput>) => Promise<{ followId: string }>;
  "sessions:unfollow": (input: z.infer<typeof followRefInput>) => Promise<{ stopped: boolean }>;
  "sessions:decide": (input: z.infer<typeof sessionsDecideInput>) => Promise<{ runId: string; seq: string }>;
  /** Posts a user message; a busy session with onBusy "reject" answers the server's `session_busy`. */
  "sessions:post": (input: z.infer<typeof sessionsPostInput>) => Promise<PostResult>;
}

/** What the renderer sees (preload's frozen `api`, or the test bridge): never throws, returns a Result. */
export type DesktopApi = {
  [C in Channel]: (...args: Parameters<Handlers[C]>) => Promise<Result<Awaited<ReturnType<Handlers[C]>>>>;
} & {
  on<E extends EventName>(event: E, listener: (payload: EventPayloads[E]) => void): () => void;
};

// ==== desktop-ui: namespace picker and sessions (src/main/namespaces.ts, src/main/sessions.ts) ====
// Sessions come from a Keel web process's REST API (/api/v1) by base URL + API key. The base URL
// is the seam for the port-forward to keel-web: connect to the forwarded local address.

export type NamespaceList = {
  namespaces: string[];
  /** false: the user may not list namespaces; `namespaces` then holds only the context's default. */
  listable: boolean;
};

/** A connection main holds (the API key stays in main; the renderer only sees the id). */
export type KeelConnection = { id: string; baseUrl: string; teamId: string; role: string; actor: string };
export type KeelSession = {
  id: string;
  agentId: string;
  agentName: string;
  agentVersion: number;
  title: string | null;
  status: string;
  lastSeq: string;
  createdAt: string;
  updatedAt: string;
  activeRun: { id: string; status: string } | null;
};
export type SessionPage = { sessions: KeelSession[]; nextCursor: string | null };
/** One stored log event: seq as a string (bigint in Postgres), payload parsed from the stored JSON (read it with @keel/core/view/session). */
export type KeelEvent = { seq: string; type: string; runId: string | null; createdAt: string | null; payload: unknown };
/** One session as GET /sessions/{id} answers, plus its agent's name. */
export type KeelSessionInfo = Pick<KeelSession, "id" | "agentId" | "agentName" | "agentVersion" | "title" | "status" | "lastSeq" | "createdAt">;
export type SessionHistory = { session: KeelSessionInfo; events: KeelEvent[] };
export type PostResult = { seq: string; runId: string; disposition: string; duplicate: boolean };
/** The contract's delta shape (@keel/core/contract/events). */
export type KeelDelta = Delta;
export type FollowState = {
  followId: string;
  sessionId: string;
  state: "connecting" | "live" | "reconnecting" | "closed";
  /** Last seq delivered; a reconnect resumes after it (Last-Event-ID). */
  lastSeq: string;
  /** Why it is reconnecting or closed (the server's message or the network error). */
  error: string | null;
};
