// The test bridge: the same DesktopApi the preload exposes, served from the real main-process
// modules over HTTP (POST /invoke/<channel>, body = the arguments as a JSON array, answer = the
// Result) and one WebSocket for events (/events), plus the built renderer as static files. So
// Playwright drives the real renderer in Chromium without Electron (which cannot be installed
// here). Loopback only, with a per-launch random token on every request.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync, statSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { WebSocketServer, type WebSocket } from "ws";
import { channels, type Emit, type Handlers } from "../src/shared/contract.ts";
import { createHandlers, createMainServices, registerAll } from "../src/main/ipc.ts";
import type { Kubeconfig } from "../src/main/kube.ts";
import type { SessionsOptions } from "../src/main/sessions.ts";
import type { KindLauncherOptions } from "../src/main/launcher/launcher.ts";

export type BridgeOptions = {
  /** The built renderer (electron-vite's out/renderer); omitted = API only. */
  staticDir?: string;
  port?: number;
  host?: string;
  load?: () => Kubeconfig;
  sessions?: Omit<SessionsOptions, "emit">;
  /** The kind launcher's options (tests put stub docker/kind/kubectl on its PATH). */
  launcher?: Omit<KindLauncherOptions, "emit">;
  token?: string;
};

export type Bridge = { url: string; token: string; pageUrl: string; emit: Emit; close: () => Promise<void> };

const MAX_BODY_BYTES = 1 << 20;
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};
const known = new Set<string>(Object.values(channels));

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
const fail = (res: http.ServerResponse, status: number, code: string, message: string) => sendJson(res, status, { error: { code, message, details: {} } });

export async function startBridge(o: BridgeOptions = {}): Promise<Bridge> {
  const token = o.token ?? randomBytes(24).toString("base64url");
  const tokenBuf = Buffer.from(token);
  const authorized = (given: string | null | undefined) => {
    const b = Buffer.from(given ?? "");
    return b.length === tokenBuf.length && timingSafeEqual(b, tokenBuf);
  };
  const sockets = new Set<WebSocket>();
  const emit: Emit = (event, payload) => {
    const frame = JSON.stringify({ event, payload });
    for (const s of sockets) if (s.readyState === s.OPEN) s.send(frame);
  };
  // Every main-process service, its events sent to the renderer over the WebSocket.
  const services = createMainServices({ emit, ...(o.sessions ? { sessions: o.sessions } : {}), ...(o.launcher ? { launcher: o.launcher } : {}) });
  const listeners = new Map<string, (event: unknown, ...args: unknown[]) => Promise<unknown>>();
  const handlers: Handlers = createHandlers(o.load ?? services.kube, services);
  registerAll((ch, fn) => listeners.set(ch, fn), handlers);

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://bridge");
    if (url.pathname.startsWith("/invoke/")) {
      if (req.method !== "POST") return fail(res, 405, "method_not_allowed", "use POST /invoke/<channel>");
      if (!authorized(req.headers.authorization?.replace(/^Bearer /, "")))
        return fail(res, 401, "unauthorized", "missing or wrong bridge token (Authorization: Bearer <token printed at start>)");
      const channel = decodeURIComponent(url.pathname.slice("/invoke/".length));
      const listener = known.has(channel) ? listeners.get(channel) : undefined;
      if (!listener) return fail(res, 404, "not_found", `no channel "${channel}"`);
      let size = 0;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => {
        size += c.length;
        // Answer at once and drain the rest: destroying the socket could reset it before the
        // client reads the 413.
        if (size > MAX_BODY_BYTES) {
          if (!res.headersSent) fail(res, 413, "payload_too_large", `arguments over ${MAX_BODY_BYTES} bytes`);
        } else chunks.push(c);
      });
      req.on("end", () => {
        if (res.headersSent) return;
        let args: unknown;
        try {
          args = chunks.length ? JSON.parse(Buffer.concat(chunks).toString("utf8")) : [];
        } catch {
          return fail(res, 400, "invalid_json", "the body must be the arguments as a JSON array");
        }
        if (!Array.isArray(args)) return fail(res, 422, "invalid_input", "the body must be a JSON array of arguments");
        // The wrapper validates the arguments and never throws: a bad call is a Result, as over IPC.
        void listener({}, ...args).then((r) => sendJson(res, 200, r));
      });
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return fail(res, 405, "method_not_allowed", `${req.method} is not served`);
    if (!o.staticDir) return fail(res, 404, "not_found", "no renderer is served by this bridge");
    // Static files of the renderer; the page reads the token from its #fragment.
    const rel = path.normalize(decodeURIComponent(url.pathname)).replace(/^([/\\])+/, "") || "index.html";
    const file = path.join(o.staticDir, rel);
    if (!file.startsWith(path.resolve(o.staticDir) + path.sep) || !existsSync(file) || !statSync(file).isFile())
      return fail(res, 404, "not_found", `no file ${url.pathname}`);
    res.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
    createReadStream(file).pipe(res);
  });

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://bridge");
    const host = req.headers.host;
    // Browsers send Origin on WebSockets: only pages served by this bridge may subscribe.
    const sameOrigin = !req.headers.origin || req.headers.origin === `http://${host}`;
    if (url.pathname !== "/events" || !authorized(url.searchParams.get("token")) || !sameOrigin) {
      socket.end("HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n");
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on("close", () => sockets.delete(ws));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, o.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as { port: number };
  const url = `http://${o.host ?? "127.0.0.1"}:${addr.port}`;
  return {
    url,
    token,
    pageUrl: `${url}/#token=${token}`,
    emit,
    close: async () => {
      await services.dispose();
      for (const s of sockets) s.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
