// DesktopApi over the test bridge (bridge/server.ts), for the renderer in a plain browser: each
// invoke is POST /invoke/<channel> with the arguments as a JSON array, events arrive on one
// WebSocket (/events). The per-launch token comes from the page URL (#token=…), as the bridge
// prints it. Browser-only code: no Node imports.
import { channels, type Channel, type DesktopApi, type EventName, type Result } from "../src/shared/contract.ts";

type Listener = (payload: any) => void;

export function createBridgeApi(base: string, token: string): DesktopApi {
  const listeners = new Map<string, Set<Listener>>();
  // Invokes wait until the event socket is open (or failed): a follow started before the socket
  // is subscribed would lose its first events.
  let ready: Promise<void> = Promise.resolve();

  const connect = () => {
    const u = new URL("/events", base);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("token", token);
    const sock = new WebSocket(u);
    ready = new Promise((resolve) => {
      sock.addEventListener("open", () => resolve(), { once: true });
      sock.addEventListener("close", () => resolve(), { once: true });
    });
    sock.onmessage = (m) => {
      const { event, payload } = JSON.parse(String(m.data)) as { event: string; payload: unknown };
      for (const l of listeners.get(event) ?? []) l(payload);
    };
    sock.onclose = () => {
      // Events missed while the socket was down are not replayed; the views refetch on their own.
      setTimeout(connect, 1_000);
    };
  };
  connect();

  const invoke = async (channel: Channel, args: unknown[]): Promise<Result<unknown>> => {
    await ready;
    try {
      const res = await fetch(new URL(`/invoke/${encodeURIComponent(channel)}`, base), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(args),
      });
      const body = (await res.json()) as Result<unknown> | { error: { code: string; message: string } };
      if ("ok" in body) return body;
      return { ok: false, error: { name: "BridgeError", code: "internal", message: `bridge answered ${res.status}: ${body.error?.message}` } };
    } catch (err) {
      return { ok: false, error: { name: "BridgeError", code: "internal", message: `cannot reach the desktop bridge at ${base}: ${(err as Error).message}` } };
    }
  };

  const api = Object.fromEntries(Object.values(channels).map((ch) => [ch, (...args: unknown[]) => invoke(ch, args)]));
  return Object.freeze<unknown>({
    ...api,
    on(event: EventName, listener: Listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => void set.delete(listener);
    },
  }) as DesktopApi;
}

/** The bridge's address and token from the page URL: ?bridge=<origin> (default: this origin), #token=<token>. */
export function bridgeFromLocation(loc: Location): { base: string; token: string } {
  const base = new URLSearchParams(loc.search).get("bridge") ?? loc.origin;
  const token = new URLSearchParams(loc.hash.replace(/^#/, "")).get("token") ?? "";
  return { base, token };
}
