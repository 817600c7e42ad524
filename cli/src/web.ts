// The web process: the built Next.js app in server/ served by Next's own request handler on a
// plain node:http server (so `keel web` and `keel up` start it in-process, and the process owns
// its shutdown). Needs `npm run build -w @keel/server` first; says so if the build is missing.
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import nextModule from "next";
// Plain module, no Next imports: its drain state is shared with the routes through globalThis.
import { beginDrain } from "@keel/server/shutdown";
import { PEER_ADDRESS_HEADER } from "@keel/server/peer";
import { provideWebEnv, type WebEnv } from "@keel/server/env";

// next is CommonJS; under NodeNext its default export arrives as the module object.
const next = ((nextModule as unknown as { default?: typeof nextModule }).default ?? nextModule) as unknown as (o: {
  dev: boolean;
  dir: string;
  hostname: string;
  port: number;
}) => {
  prepare(): Promise<void>;
  getRequestHandler(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
  close(): Promise<void>;
};

export const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../server");

export type RunningWeb = { url: string; stop: () => Promise<void> };

export type WebOptions = {
  /** The web process's parsed environment (server/src/env.ts), handed to its routes as is. */
  env: WebEnv;
  port: number;
  host: string;
  /** After SIGTERM, how long /readyz says 503 while requests are still served (load balancers catch up). */
  shutdownDelayMs?: number;
  /** Then, how long requests in flight may take before their connections are cut. */
  shutdownGraceMs?: number;
};

export async function startWeb(opts: WebOptions): Promise<RunningWeb> {
  if (!existsSync(path.join(serverDir, ".next", "BUILD_ID"))) {
    throw new Error(`the dashboard is not built: run \`npm run build -w @keel/server\` (or \`npm start\`, which builds it)`);
  }
  // The routes read this object, not process.env: `keel up` completes it (database URL, admin,
  // secrets key) without touching the environment of the process.
  provideWebEnv(opts.env);
  const app = next({ dev: false, dir: serverDir, hostname: opts.host, port: opts.port });
  await app.prepare();
  const handle = app.getRequestHandler();
  const server = http.createServer((req, res) => {
    // Route handlers never see the socket: hand them its address, replacing any a client sent
    // (login limits are per address; server/src/http.ts requestClientAddress).
    req.headers[PEER_ADDRESS_HEADER] = req.socket.remoteAddress ?? "";
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${opts.port} is in use: stop what uses it or set PORT`) : err),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    url: `http://${opts.host === "0.0.0.0" ? "localhost" : opts.host}:${opts.port}`,
    stop: async () => {
      // Readiness turns false and every SSE stream ends with a retry hint first: EventSource
      // clients reconnect through the load balancer to another replica with Last-Event-ID.
      beginDrain();
      if (opts.shutdownDelayMs) await new Promise((r) => setTimeout(r, opts.shutdownDelayMs));
      beginDrain(); // streams opened during the delay were told to go away when they opened
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Keep-alive sockets go idle as their last response ends; close them as they do.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const cut = setTimeout(() => server.closeAllConnections(), opts.shutdownGraceMs ?? 10_000);
      await closed;
      clearInterval(idle);
      clearTimeout(cut);
      await app.close();
    },
  };
}
