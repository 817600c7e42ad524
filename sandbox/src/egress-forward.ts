// Inside the sandbox: 127.0.0.1:PORT → the host-side egress proxy's unix socket. The sandbox's
// network namespace has nothing but loopback, so this forwarder is the only way out, and only to
// the proxy, which decides per destination. Commands get HTTP_PROXY & co. pointing here; a tool
// that ignores them reaches nothing (fail closed).
import net from "node:net";
import { NO_PROXY, PROXY_URL_VARS } from "./egress-grant.js";

export type EgressConfig = { socket: string; port: number };

export function proxyEnv(port: number): Record<string, string> {
  const url = `http://127.0.0.1:${port}`;
  return { ...Object.fromEntries(PROXY_URL_VARS.map((v) => [v, url])), NO_PROXY, no_proxy: NO_PROXY };
}

export function startEgressForwarder(cfg: EgressConfig): Promise<net.Server> {
  const server = net.createServer((client) => {
    const upstream = net.connect(cfg.socket);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    upstream.on("error", (err) => {
      // The proxy is gone (the worker restarts it with the sandbox): say so to an HTTP client.
      if (client.writable)
        client.end(
          `HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nthe sandbox's egress proxy is unreachable: ${err.message}\n`,
        );
      upstream.destroy();
    });
    client.on("error", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, "127.0.0.1", () => resolve(server));
  });
}
