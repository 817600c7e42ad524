// The one wrapper every IPC handler goes through: validates the renderer's arguments against the
// contract's schema and turns any throw into `{ ok: false, error }`. Electron's ipcMain.handle
// would otherwise reject the renderer's promise with a string that loses the error's code (and
// prefixes "Error invoking remote method"), so the renderer could not tell 401 from 403.
// Takes the registrar as a parameter (ipcMain.handle in the app, a Map in tests, the HTTP bridge
// later), so nothing here imports Electron.
import { ZodError } from "zod";
import { inputSchemas, type Channel, type ErrorInfo, type Handlers, type Result } from "../shared/contract.ts";
import { contextStatus, KubeError, kubeConfigFor, listContexts, loadKubeconfig, type Kubeconfig } from "./kube.ts";
import { createClaim, deleteClaim, listSandboxes, scaleWarmPool } from "./sandboxes.ts";
import { listNamespaces } from "./namespaces.ts";
import { KeelApiError, SessionsService } from "./sessions.ts";

/** ipcMain.handle's shape: the first listener argument is the IpcMainInvokeEvent (unused here). */
export type Registrar = (channel: string, listener: (event: unknown, ...args: unknown[]) => Promise<unknown>) => void;

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof KubeError || err instanceof KeelApiError) return { name: err.name, code: err.code, message: err.message };
  if (err instanceof ZodError) {
    const issues = err.issues.map((i) => `${i.path.join(".") || "arguments"}: ${i.message}`).join("; ");
    return { name: "ValidationError", code: "invalid_input", message: `invalid arguments: ${issues}` };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, code: "internal", message: e.message };
}

export function handle<C extends Channel>(register: Registrar, channel: C, fn: Handlers[C]): void {
  register(channel, async (_event, ...args): Promise<Result<unknown>> => {
    try {
      const parsed = inputSchemas[channel].parse(args) as Parameters<Handlers[C]>;
      return { ok: true, value: await (fn as (...a: unknown[]) => Promise<unknown>)(...parsed) };
    } catch (err) {
      return { ok: false, error: toErrorInfo(err) };
    }
  });
}

/**
 * The handlers, backed by the main-process modules. Kubeconfig is re-read per call: kubectl
 * users switch contexts and refresh credentials outside the app, and reading a few small files
 * is cheap next to the API round trip.
 */
export function createHandlers(load: () => Kubeconfig = () => loadKubeconfig(), o: { sessions?: SessionsService } = {}): Handlers {
  const sessions = o.sessions ?? new SessionsService({ emit: () => {} });
  return {
    ...sessions.handlers(),
    "kube:namespaces:list": async ({ context }) => listNamespaces(load(), context),
    "kube:contexts:list": async () => listContexts(load()),
    "kube:context:status": async ({ context }) => contextStatus(load(), context),
    "sandboxes:list": async ({ context, namespace }) => listSandboxes(kubeConfigFor(load(), context), namespace ? { namespace } : {}),
    "sandboxes:claim:create": async ({ context, ...input }) => createClaim(kubeConfigFor(load(), context), input),
    "sandboxes:claim:delete": async ({ context, ...input }) => deleteClaim(kubeConfigFor(load(), context), input),
    "sandboxes:warmpool:scale": async ({ context, ...input }) => scaleWarmPool(kubeConfigFor(load(), context), input),
  };
}

export function registerAll(register: Registrar, handlers: Handlers = createHandlers()): void {
  for (const channel of Object.keys(inputSchemas) as Channel[]) {
    handle(register, channel, handlers[channel] as never);
  }
}
