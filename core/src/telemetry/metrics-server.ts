// A process's /metrics for Prometheus, for processes that serve no HTTP of their own (the
// worker). The web serves the same registry shape through its route (server/app/metrics).
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import { toErrorBody, UnauthorizedError, NotFoundError, type KeelError } from "../errors.js";

/** True when no token is configured, or the Authorization header is exactly `Bearer <token>` (compared in constant time). */
export function metricsAuthorized(authorization: string | null | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const a = Buffer.from(authorization ?? "");
  const b = Buffer.from(`Bearer ${token}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const METRICS_UNAUTHORIZED = "/metrics needs Authorization: Bearer <KEEL_METRICS_TOKEN>";

export class MetricsServer {
  private server: Server | null = null;
  constructor(private readonly o: { registry: Registry; port: number; host?: string; token?: string }) {}

  /** Listens; resolves with the bound port (port 0 picks a free one). */
  async start(): Promise<number> {
    const server = createServer((req, res) => {
      const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
        res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
      const refuse = (err: KeelError, headers: Record<string, string> = {}) => {
        const { status, body } = toErrorBody(err);
        answer(status, body, headers);
      };
      const path = new URL(req.url ?? "/", "http://x").pathname;
      if (path !== "/metrics" || (req.method !== "GET" && req.method !== "HEAD")) return refuse(new NotFoundError("Route", `${req.method} ${path}`));
      if (!metricsAuthorized(req.headers.authorization, this.o.token))
        return refuse(new UnauthorizedError(METRICS_UNAUTHORIZED), { "www-authenticate": "Bearer" });
      this.o.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.o.registry.contentType }).end(req.method === "HEAD" ? undefined : text),
        (err: unknown) => answer(500, toErrorBody(err).body),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.o.port, this.o.host ?? "0.0.0.0", () => resolve());
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }
}
