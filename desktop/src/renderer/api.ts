// The renderer's DesktopApi: preload's window.desktop inside Electron, otherwise the test bridge
// over HTTP/WebSocket (bridge/client.ts). Views call it only through `call`, inside TanStack
// Query functions, so a failed Result becomes a query error carrying the main process's code.
import { bridgeFromLocation, createBridgeApi } from "../../bridge/client.ts";
import type { Channel, DesktopApi, ErrorInfo, Handlers } from "../shared/contract.ts";

declare global {
  interface Window {
    desktop?: DesktopApi;
  }
}

function pick(): DesktopApi {
  if (window.desktop) return window.desktop;
  const { base, token } = bridgeFromLocation(window.location);
  return createBridgeApi(base, token);
}

export const api: DesktopApi = pick();

export class ApiError extends Error {
  readonly code: ErrorInfo["code"];
  readonly status: number | undefined;
  constructor(error: ErrorInfo) {
    super(error.message);
    this.code = error.code;
    this.status = error.status;
  }
}

/** One invoke; throws ApiError on `{ ok: false }`. */
export async function call<C extends Channel>(channel: C, ...args: Parameters<Handlers[C]>): Promise<Awaited<ReturnType<Handlers[C]>>> {
  const fn = api[channel] as unknown as (...a: unknown[]) => Promise<{ ok: true; value: Awaited<ReturnType<Handlers[C]>> } | { ok: false; error: ErrorInfo }>;
  const r = await fn(...args);
  if (!r.ok) throw new ApiError(r.error);
  return r.value;
}
