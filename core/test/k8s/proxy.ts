// A loopback TCP proxy for fault tests: the driver's kubeconfig points at it instead of the API
// server, so one test file can cut the driver's connections (a dropped watch, a network blip) or
// take "the API server" down for a while (new connections refused) without touching the shared
// control plane or any other test file. TLS passes through untouched: the API server's
// certificate names 127.0.0.1, which the proxy's address still is.
//
// With `tls` (the API server's own serving certificate and CA from the control plane's state dir)
// the proxy terminates TLS and sees the HTTP in between, so `loseAnswerTo` can let one request
// reach the API server and cut its connection as the answer starts (the request took effect, the
// client never hears so), and `rewriteRequestLine` can change one request on its way, e.g. make a
// watch start from a resourceVersion the API server has compacted away (a real 410 Gone event).
import { readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import { loadAllYaml } from "@kubernetes/client-node";

export class FaultProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Connections accepted and connections this proxy cut (by drop() or down()). */
  readonly stats = { accepted: 0, dropped: 0 };

  private loseAnswer: { request: RegExp; lost: () => void } | undefined;
  private rewrite: { request: RegExp; replacement: string; done: () => void } | undefined;

  private constructor(
    private readonly target: { host: string; port: number },
    public port: number,
    private readonly tls?: TlsFiles,
  ) {}

  /** Listens on a free loopback port and forwards every connection to target. */
  static async start(target: { host: string; port: number }, opts: { tls?: TlsFiles } = {}): Promise<FaultProxy> {
    const p = new FaultProxy(target, 0, opts.tls);
    await p.up();
    return p;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Cuts every open connection at both ends, as a crash or a network cut does. Returns how many. */
  drop(): number {
    const n = this.pairs.size;
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.stats.dropped += n;
    return n;
  }

  /**
   * (tls mode) The next request whose request line ("POST /apis/…") matches is forwarded, and its
   * connection is cut when the answer starts. Resolves once that happened.
   */
  loseAnswerTo(request: RegExp): Promise<void> {
    if (!this.tls) throw new Error("loseAnswerTo needs a proxy started with { tls }: TLS passthrough cannot see requests");
    return new Promise((lost) => (this.loseAnswer = { request, lost }));
  }

  /** (tls mode) The next request line matching `request` is rewritten with `replacement` (String.replace). */
  rewriteRequestLine(request: RegExp, replacement: string): Promise<void> {
    if (!this.tls) throw new Error("rewriteRequestLine needs a proxy started with { tls }");
    return new Promise((done) => (this.rewrite = { request, replacement, done }));
  }

  /** The API server is down: cuts the open connections and closes the port (ECONNREFUSED). */
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.drop();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  /** Back up, on the same port (the kubeconfig keeps pointing at it). */
  async up(): Promise<void> {
    if (this.server) return;
    const server = this.tls
      ? tls.createServer({ cert: readFileSync(this.tls.cert), key: readFileSync(this.tls.key) }, (client) => this.forward(client))
      : net.createServer((client) => this.forward(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err) => reject(new Error(`fault proxy could not listen on 127.0.0.1:${this.port}: ${err.message}`)));
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    await this.down();
  }

  private forward(client: net.Socket) {
    this.stats.accepted++;
    const upstream = this.tls
      ? tls.connect({ port: this.target.port, host: this.target.host, ca: readFileSync(this.tls.ca) })
      : net.connect(this.target.port, this.target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of pair) s.on("error", end).on("close", end);
    if (!this.tls) {
      client.pipe(upstream);
      upstream.pipe(client);
      return;
    }
    let losing: (() => void) | undefined;
    client.on("data", (chunk: Buffer) => {
      // A request starts a chunk of its own (client-node sends one request per connection).
      const text = chunk.toString("latin1");
      const eol = text.indexOf("\r\n");
      const line = eol > 0 ? text.slice(0, eol) : "";
      const rule = this.loseAnswer;
      if (rule && rule.request.test(line)) {
        this.loseAnswer = undefined;
        losing = rule.lost;
      }
      const rw = this.rewrite;
      if (rw && rw.request.test(line)) {
        this.rewrite = undefined;
        chunk = Buffer.from(line.replace(rw.request, rw.replacement) + text.slice(eol), "latin1");
        rw.done();
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (losing) {
        this.stats.dropped++;
        end();
        losing();
        losing = undefined;
        return;
      }
      client.write(chunk);
    });
  }
}

/** The host and port a kubeconfig file's current cluster points at. */
export function kubeconfigServer(file: string): { host: string; port: number } {
  const u = new URL(currentCluster(parseKubeconfig(file)).server);
  return { host: u.hostname, port: Number(u.port || 443) };
}

/** Writes a copy of a kubeconfig file whose current cluster's server is `server`. */
export function kubeconfigWithServer(file: string, server: string, out: string): string {
  const config = parseKubeconfig(file);
  currentCluster(config).server = server;
  writeFileSync(out, JSON.stringify(config), { mode: 0o600 });
  return out;
}

/** PEM files: the serving certificate and key the proxy presents, and the CA that signed the upstream's. */
export type TlsFiles = { cert: string; key: string; ca: string };

type Kubeconfig = {
  "current-context": string;
  contexts: { name: string; context: { cluster: string } }[];
  clusters: { name: string; cluster: { server: string } }[];
};

function parseKubeconfig(file: string): Kubeconfig {
  return loadAllYaml(readFileSync(file, "utf8"))[0] as Kubeconfig;
}

function currentCluster(c: Kubeconfig): { server: string } {
  const ctx = c.contexts.find((x) => x.name === c["current-context"]);
  const cluster = c.clusters.find((x) => x.name === ctx?.context.cluster);
  if (!cluster) throw new Error(`kubeconfig has no cluster for its current context "${c["current-context"]}"`);
  return cluster.cluster;
}
