// The web process: the built Next.js app in server/ served by Next's own request handler on a
// plain node:http server (so `keel web` and `keel up` start it in-process, and the process owns
// its shutdown). Needs `npm run build -w @keel/server` first; says so if the build is missing.
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import nextModule from "next";

// next is CommonJS; under NodeNext its default export arrives as the module object.
const next = ((nextModule as unknown as { default?: typeof nextModule }).default ?? nextModule) as unknown as (o: { dev: boolean; dir: string; hostname: string; port: number }) => {
  prepare(): Promise<void>;
  getRequestHandler(): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
  close(): Promise<void>;
};

export const serverDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../server");

export type RunningWeb = { url: string; stop: () => Promise<void> };

export async function startWeb(opts: { port: number; host: string }): Promise<RunningWeb> {
  if (!existsSync(path.join(serverDir, ".next", "BUILD_ID"))) {
    throw new Error(`the dashboard is not built: run \`npm run build -w @keel/server\` (or \`npm start\`, which builds it)`);
  }
  const app = next({ dev: false, dir: serverDir, hostname: opts.host, port: opts.port });
  await app.prepare();
  const handle = app.getRequestHandler();
  const server = http.createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(err.code === "EADDRINUSE" ? new Error(`port ${opts.port} is in use: stop what uses it or set PORT`) : err));
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    url: `http://${opts.host === "0.0.0.0" ? "localhost" : opts.host}:${opts.port}`,
    stop: async () => {
      // Open SSE streams would keep close() waiting; clients resume with Last-Event-ID elsewhere.
      server.closeIdleConnections();
      const closed = new Promise<void>((r) => server.close(() => r()));
      setTimeout(() => server.closeAllConnections(), 2_000).unref();
      await closed;
      await app.close();
    },
  };
}
