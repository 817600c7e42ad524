// The one wrapper every IPC handler goes through: validates the renderer's arguments against the
// contract's schema and turns any throw into `{ ok: false, error }`. Electron's ipcMain.handle
// would otherwise reject the renderer's promise with a string that loses the error's code (and
// prefixes "Error invoking remote method"), so the renderer could not tell 401 from 403.
// Takes the registrar as a parameter (ipcMain.handle in the app, a Map in tests, the HTTP bridge
// in desktop/bridge/ that serves the renderer to Chromium in the UI tests), so nothing here
// imports Electron.
import { ZodError } from "zod";
import {
  errorCodes,
  inputSchemas,
  portForwardStartInput,
  type Channel,
  type Emit,
  type ErrorCode,
  type ErrorInfo,
  type Handlers,
  type Result,
} from "../shared/contract.ts";
import type { KubeConfig } from "@kubernetes/client-node";
import { contextStatus, KubeError, kubeConfigFor, listContexts, type Kubeconfig } from "./kube.ts";
import { KubeconfigSource } from "./kubeconfig-source.ts";
import { KindLauncher, type KindLauncherOptions } from "./launcher/launcher.ts";
import { handOver } from "./launcher/handover.ts";
import { resumeSandbox, sandboxEvents, suspendSandbox } from "./lifecycle.ts";
import { caller, Handles } from "./handles.ts";
import { SandboxWatch } from "./watch.ts";
import { ServicePortForward } from "./portforward.ts";
import { createClaim, deleteClaim, listSandboxes, scaleWarmPool } from "./sandboxes.ts";
import { listNamespaces } from "./namespaces.ts";
import { KeelApiError, SessionsService, type SessionsOptions } from "./sessions.ts";

/** ipcMain.handle's shape: the first listener argument is the IpcMainInvokeEvent (unused here). */
export type Registrar = (channel: string, listener: (event: unknown, ...args: unknown[]) => Promise<unknown>) => void;

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof KubeError) return { name: err.name, code: err.code, message: err.message };
  // A Keel server's code, status and details reach the renderer unchanged.
  if (err instanceof KeelApiError)
    return {
      name: err.name,
      code: err.code,
      message: err.message,
      ...(err.status !== undefined ? { status: err.status } : {}),
      ...(err.details ? { details: err.details } : {}),
    };
  // Other main-process errors (LauncherError, …) carry one of the contract's codes too.
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === "string" && (errorCodes as readonly string[]).includes(code)) {
    return { name: err.name, code: code as ErrorCode, message: err.message };
  }
  if (err instanceof ZodError) {
    const issues = err.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ");
    return { name: "ValidationError", code: "invalid_input", message: `invalid arguments: ${issues}` };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, code: "internal", message: e.message };
}

/** The window that sent an IPC call: Electron's event.sender.id (a webContents); undefined for the test bridge. */
export function senderOf(event: unknown): number | undefined {
  const id = (event as { sender?: { id?: unknown } } | null)?.sender?.id;
  return typeof id === "number" ? id : undefined;
}

export function handle<C extends Channel>(register: Registrar, channel: C, fn: Handlers[C]): void {
  register(channel, async (event, ...args): Promise<Result<unknown>> => {
    try {
      const parsed = inputSchemas[channel].parse(args) as Parameters<Handlers[C]>;
      // What the handler opens (a watch, a follow, a forward) is tagged with this window.
      const value = await caller.run(senderOf(event), () => (fn as (...a: unknown[]) => Promise<unknown>)(...parsed));
      return { ok: true, value };
    } catch (err) {
      return { ok: false, error: toErrorInfo(err) };
    }
  });
}

/**
 * Long-lived main-process state: the kind launcher (one per app), sandbox watches and
 * port-forwards by id. `emit` is how events reach
 * the renderer (webContents.send in the app, the bridge's WebSocket in tests); dispose() on quit.
 */
export type MainServices = {
  emit: Emit;
  /** The kubeconfig, cached by its files' mtimes, one KubeConfig per context. */
  kube: KubeconfigSource;
  /** Session follows by the window that opened them (follow id → webContents id). */
  follows: Handles<{ id: string; close(): Promise<void> }>;
  /** Closes what one window opened (its watches, follows and port-forwards): on reload, crash or close. */
  closeOwner(owner: number): Promise<void>;
  /** Connections to Keel web processes (URL + API key, or a port-forward's base URL). */
  sessions: SessionsService;
  launcher: KindLauncher;
  watches: Handles<SandboxWatch>;
  forwards: Handles<ServicePortForward>;
  /** Reconnect delays of sandbox watches (tests shorten them). */
  watchBackoff?: { baseMs: number; maxMs: number };
  dispose(): Promise<void>;
};
export function createMainServices(
  opts: {
    emit?: Emit;
    sessions?: Omit<SessionsOptions, "emit">;
    launcher?: Omit<KindLauncherOptions, "emit">;
    watchBackoff?: { baseMs: number; maxMs: number };
    kube?: KubeconfigSource;
  } = {},
): MainServices {
  const emit: Emit = opts.emit ?? (() => {});
  const kube = opts.kube ?? new KubeconfigSource({ emit });
  const sessions = new SessionsService({ ...opts.sessions, emit });
  // After a run the operator gets a sessions connection with an API key made for them (handover.ts).
  const handover = ({ context, dashboardUrl }: { context: string; dashboardUrl: string }) =>
    handOver(kube.forContext(context), dashboardUrl.replace("//localhost:", "//127.0.0.1:"), (i) => sessions.connect(i));
  const launcher = new KindLauncher({ handover, ...opts.launcher, emit });
  const watches = new Handles<SandboxWatch>();
  const forwards = new Handles<ServicePortForward>();
  const follows = new Handles<{ id: string; close(): Promise<void> }>();
  return {
    emit,
    kube,
    sessions,
    launcher,
    watches,
    forwards,
    follows,
    ...(opts.watchBackoff ? { watchBackoff: opts.watchBackoff } : {}),
    async closeOwner(owner) {
      await Promise.all([watches.closeOwner(owner), forwards.closeOwner(owner), follows.closeOwner(owner)]);
    },
    async dispose() {
      kube.close();
      await Promise.all([launcher.dispose(), watches.closeAll(), forwards.closeAll(), follows.closeAll(), sessions.close()]);
    },
  };
}

/** Where handlers get kubeconfig from: the services' cached source, or (tests) a loader function. */
export type KubeAccess = { load(): Kubeconfig; forContext(context: string): KubeConfig };
const access = (k: KubeAccess | (() => Kubeconfig)): KubeAccess =>
  typeof k === "function" ? { load: k, forContext: (context) => kubeConfigFor(k(), context) } : k;

/**
 * The handlers, backed by the main-process modules. Kubeconfig comes from the services' source:
 * re-read when its files change (kubectl users switch contexts and refresh credentials outside
 * the app), one KubeConfig per context otherwise, so exec plugins' tokens are reused.
 */
export function createHandlers(kube?: KubeAccess | (() => Kubeconfig), services: MainServices = createMainServices()): Handlers {
  const { launcher, watches, forwards, emit, sessions, follows } = services;
  const k = access(kube ?? services.kube);
  const load = () => k.load();
  const kubeConfigFor = (_config: Kubeconfig, context: string) => k.forContext(context);
  const sessionHandlers = sessions.handlers();
  return {
    ...sessionHandlers,
    "sessions:follow": async (input) => {
      const r = await sessionHandlers["sessions:follow"](input);
      follows.add({ id: r.followId, close: async () => void (await sessions.unfollow(r.followId)) });
      return r;
    },
    "sessions:unfollow": async (input) => {
      const r = await sessionHandlers["sessions:unfollow"](input);
      await follows.close(input.followId);
      return r;
    },
    "kube:namespaces:list": async ({ context }) => listNamespaces(load(), context, k.forContext(context)),
    "kube:contexts:list": async () => listContexts(load()),
    "kube:context:status": async ({ context }) => contextStatus(load(), context, {}, k.forContext(context)),
    "sandboxes:list": async ({ context, namespace }) => listSandboxes(kubeConfigFor(load(), context), namespace ? { namespace } : {}),
    "sandboxes:claim:create": async ({ context, ...input }) => createClaim(kubeConfigFor(load(), context), input),
    "sandboxes:claim:delete": async ({ context, ...input }) => deleteClaim(kubeConfigFor(load(), context), input),
    "sandboxes:warmpool:scale": async ({ context, ...input }) => scaleWarmPool(kubeConfigFor(load(), context), input),
    // -- main-process block (desktop-main)
    "launcher:prereqs": () => launcher.prerequisites(),
    "launcher:state": async () => launcher.state(),
    "launcher:logs": async ({ step }) => launcher.logLines(step),
    "launcher:start": (input) => launcher.start(input),
    "launcher:cancel": () => launcher.cancel(),
    "launcher:retry": () => launcher.retry(),
    "launcher:teardown": () => launcher.teardown(),
    "sandboxes:watch:start": async ({ context, namespace }) => {
      const w = new SandboxWatch({
        kc: kubeConfigFor(load(), context),
        context,
        namespace,
        emit,
        ...(services.watchBackoff ? { backoff: services.watchBackoff } : {}),
      });
      const status = await w.start(); // throws (nothing kept) when the first list fails
      watches.add(w);
      return status;
    },
    "sandboxes:watch:stop": async ({ watchId }) => ({ stopped: await watches.close(watchId) }),
    "sandboxes:suspend": async ({ context, ...ref }) => suspendSandbox(kubeConfigFor(load(), context), ref),
    "sandboxes:resume": async ({ context, ...ref }) => resumeSandbox(kubeConfigFor(load(), context), ref),
    "sandboxes:events": async ({ context, ...ref }) => sandboxEvents(kubeConfigFor(load(), context), ref),
    "keel:portforward:start": async (input) => {
      const o = portForwardStartInput.parse(input); // handle() parsed it already; this gives the defaults' types
      return { ...forwards.add(await ServicePortForward.open(kubeConfigFor(load(), o.context), { ...o, emit })).info };
    },
    "keel:portforward:stop": async ({ forwardId }) => ({ stopped: await forwards.close(forwardId) }),
  };
}

export function registerAll(register: Registrar, handlers: Handlers = createHandlers()): void {
  for (const channel of Object.keys(inputSchemas) as Channel[]) {
    handle(register, channel, handlers[channel] as never);
  }
}
