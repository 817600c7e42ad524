// The renderer's DesktopApi: preload's window.desktop inside Electron, otherwise the test bridge
// over HTTP/WebSocket (bridge/client.ts). Views call it only through `call`, inside TanStack
// Query functions, so a failed Result becomes a query error carrying the main process's code.
import { bridgeFromLocation, createBridgeApi } from "../../bridge/client.ts";
import type { Channel, DesktopApi, ErrorCode, Handlers } from "../shared/contract.ts";

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
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/** One invoke; throws ApiError on `{ ok: false }`. */
export async function call<C extends Channel>(channel: C, ...args: Parameters<Handlers[C]>): Promise<Awaited<ReturnType<Handlers[C]>>> {
  const fn = api[channel] as unknown as (...a: unknown[]) => Promise<{ ok: true; value: any } | { ok: false; error: { code: ErrorCode; message: string } }>;
  const r = await fn(...args);
  if (!r.ok) throw new ApiError(r.error.code, r.error.message);
  return r.value;
}
