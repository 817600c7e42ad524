// A loopback TCP proxy for putting between a client and the API server, so a test can drop the
// connections (drop) or refuse new ones for a while (stop … start on the same port) without
// touching the control plane other tests share. TLS passes through untouched.
import net from "node:net";

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  /** Connections accepted since construction. */
  accepted = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  /** Client-side connections currently open. */
  get live(): number {
    return [...this.sockets].filter((s) => s.remoteAddress !== undefined && s.localPort === this.port).length;
  }

  async start(): Promise<number> {
    const server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  /** Resets every open connection; new ones are still accepted. */
  drop(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  /** Refuses new connections and resets the open ones, until start() (same port). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.drop();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}
