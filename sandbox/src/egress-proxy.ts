// The egress proxy (entry egress-main.ts, bundled to dist/egress-proxy.mjs), in two forms:
// - local: the host-side proxy of one sandbox: the local driver starts one per sandbox whose
//   policy has an allow-list, detached like the sandbox itself, and kills it with the sandbox;
// - Kubernetes: one shared proxy on a TCP port (--port), where each connection carries its
//   template's signed grant as the proxy password (egress-grant.ts) and gets that grant's rules.
//   A connection without a valid grant gets 407.
//
//   node egress-proxy.mjs --socket <sandbox dir>/egress/proxy.sock --config-stdin
//   stdin: {"rules": EgressRule[], "hosts": {"name": "address"}, "internal": EgressRule[]}
//   node egress-proxy.mjs --port 3128            (KEEL_SECRETS_KEY in the environment: grants)
//
// It listens on a unix socket that is bind-mounted (read-only) into the sandbox, whose own network
// namespace is empty; the runtime inside forwards 127.0.0.1:3128 to it. HTTP CONNECT (any TCP,
// e.g. TLS) and absolute-form HTTP requests are served for allowed destinations only; anything
// else gets 403 with the reason as text. The proxy is proxy-chain (Apify's, think Squid): CONNECT
// tunnels, HTTP forwarding with hop-by-hop headers handled, errors mapped to statuses; we only
// decide per request (prepareRequestFunction) and pin the address we checked (dnsLookup), so a
// second DNS answer cannot differ from the one the decision was made on.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { chmodSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { RequestError, Server } from "proxy-chain";
import { egressGrantKey, verifyEgressGrant } from "./egress-grant.js";
import { EgressMatcher, normalizeHost, type EgressRule } from "./egress-rules.js";
import { cappedLog } from "./log-file.js";

export type EgressProxyConfig = {
  /** The sandbox's rules; with `grantKey`, none: each connection's grant brings its own. */
  rules: EgressRule[];
  /** Shared mode: rules come from the grant each connection presents as its proxy password. */
  grantKey?: Buffer;
  /** Static name → address map consulted before DNS (operator-set, like /etc/hosts; tests use it). */
  hosts?: Record<string, string>;
  /** Address rules the operator opened inside internal space (egress-rules.ts EgressMatcher). */
  internal?: EgressRule[];
  /** The refusal log (one JSON line each), rotated past maxBytes; else stderr. */
  log?: { path: string; maxBytes: number };
};

/** Name → addresses (empty: unresolvable). DNS by default; tests pass a loopback stand-in. */
export type Resolve = (host: string) => Promise<string[]>;

const systemResolve: Resolve = (host) =>
  new Promise<string[]>((resolve) => dnsLookup(host, { all: true }, (err, list) => resolve(err ? [] : list.map((a) => a.address))));

type Log = (entry: Record<string, unknown>) => void;
type ProxySocket = Parameters<Server["onConnection"]>[0];

/**
 * proxy-chain drops connections without a remoteAddress (a guard for nodejs/node#23858, sockets
 * already closed). Connections over a unix socket never have one, so register them as its own
 * onConnection does, without that guard.
 */
class UnixSocketProxy extends Server {
  override onConnection(socket: ProxySocket): void {
    if (socket.destroyed) return;
    this.registerConnection(socket);
    socket.on("error", () => {});
  }
}

type Policy = { matcher: EgressMatcher; hasRanges: boolean; who?: Record<string, string> };
const policyOf = (rules: EgressRule[], internal: EgressRule[], who?: Record<string, string>): Policy => ({
  matcher: new EgressMatcher(rules, internal),
  hasRanges: rules.some((r) => r.kind === "cidr"),
  ...(who ? { who } : {}),
});

export function createEgressProxy(config: EgressProxyConfig, log: Log = () => {}, resolve: Resolve = systemResolve, port = 0): Server {
  const fixed = policyOf(config.rules, config.internal ?? []);
  const grants = new Map<string, Policy>(); // a grant's matcher, made once (templates are few)
  const policyFor = (password: string): Policy => {
    if (!config.grantKey) return fixed;
    let p = grants.get(password);
    if (!p) {
      const g = verifyEgressGrant(config.grantKey, password);
      if (!g) {
        log({ msg: "egress refused", reason: "no valid grant" });
        throw new RequestError(
          "this egress proxy serves Keel sandboxes only: use the HTTPS_PROXY of the sandbox's environment (its grant is the password)",
          407,
          {
            "proxy-authenticate": 'Basic realm="keel-egress"',
          },
        );
      }
      if (grants.size >= 10_000) grants.clear();
      grants.set(password, (p = policyOf(g.rules, g.internal, { team: g.team, template: g.template })));
    }
    return p;
  };
  const hosts = new Map(Object.entries(config.hosts ?? {}).map(([k, v]) => [normalizeHost(k), v]));
  return new UnixSocketProxy({
    port,
    verbose: false,
    prepareRequestFunction: async ({ hostname, port, password }) => {
      const { matcher, hasRanges, who } = policyFor(password);
      const refuse = (host: string, port: number, reason: string): never => {
        log({ msg: "egress refused", host, port, reason, ...who });
        throw new RequestError(reason, 403, { "x-keel-egress": "refused" });
      };
      const host = normalizeHost(hostname);
      let addresses: string[];
      let trusted = false;
      if (isIP(host)) addresses = [host];
      else if (hosts.has(host)) {
        addresses = [hosts.get(host)!];
        trusted = true;
      } else if (matcher.nameAllowed(host, port) || hasRanges) {
        // Only a listed name (or, with address rules, any name) is looked up: without address
        // rules an unlisted name is refused before DNS, so DNS queries cannot carry data out.
        addresses = await resolve(host);
        if (addresses.length === 0) {
          if (!matcher.nameAllowed(host, port))
            refuse(host, port, `egress to ${host}:${port} is not allowed by this sandbox's policy (allowed: ${matcher.describe()})`);
          throw new RequestError(`cannot resolve ${host}`, 502, { "x-keel-egress": "unresolved" });
        }
      } else {
        return refuse(host, port, `egress to ${host}:${port} is not allowed by this sandbox's policy (allowed: ${matcher.describe()})`);
      }
      const decision = matcher.decide(host, port, addresses, trusted);
      if (!decision.allowed) return refuse(host, port, decision.reason);
      // Only the checked addresses, all of them: Node's happy eyeballs (lookup with all: true)
      // then tries IPv6 and IPv4 in turn, as it would with DNS.
      const allowed: LookupAddress[] = decision.addresses.map((address) => ({ address, family: isIP(address) }));
      const pinned = (_name: string, opts: LookupOptions | number | ((...a: unknown[]) => void), cb?: (...a: unknown[]) => void) => {
        const callback = (typeof opts === "function" ? opts : cb)!;
        const all = typeof opts === "object" && opts.all === true;
        process.nextTick(() => (all ? callback(null, allowed) : callback(null, allowed[0]!.address, allowed[0]!.family)));
      };
      return { dnsLookup: pinned as unknown as typeof dnsLookup };
    },
  });
}

/** Listens on a unix socket (a long path is bound relative to its directory: sun_path is 107 bytes). */
export function listenOnSocket(server: Server, socketPath: string): Promise<void> {
  rmSync(socketPath, { force: true });
  let target = path.resolve(socketPath);
  if (Buffer.byteLength(target) >= 100) {
    process.chdir(path.dirname(target));
    target = `./${path.basename(target)}`;
  }
  return new Promise((resolve, reject) => {
    server.server.once("error", reject);
    server.server.listen(target, () => {
      // Only the sandbox's uid (the proxy runs as it) may connect.
      chmodSync(target, 0o600);
      resolve();
    });
  });
}

/** The process entry (egress-main.ts): args, config on stdin (or grants), listen, stop on SIGTERM. */
export async function runEgressProxy(): Promise<void> {
  const { values } = parseArgs({ options: { socket: { type: "string" }, port: { type: "string" }, "config-stdin": { type: "boolean", default: false } } });
  const fail = (m: string): never => {
    process.stderr.write(`keel-egress-proxy: ${m}\n`);
    process.exit(2);
  };
  let config: EgressProxyConfig;
  let write: (line: string) => void;
  const port = values.port ? Number(values.port) : 0;
  if (values.port) {
    // The shared proxy of a Kubernetes installation: rules from each connection's grant.
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail("--port must be a TCP port");
    const secret = Buffer.from(process.env.KEEL_SECRETS_KEY ?? "", "base64");
    if (secret.length !== 32) fail("set KEEL_SECRETS_KEY (32 bytes, base64; the workers' key: grants are signed with it)");
    config = { rules: [], grantKey: egressGrantKey(secret) };
    write = (line) => void process.stdout.write(line);
  } else {
    if (!values.socket || !values["config-stdin"]) fail("usage: egress-proxy --socket PATH --config-stdin, or --port N");
    const chunks: Buffer[] = [];
    for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
    config = JSON.parse(Buffer.concat(chunks).toString("utf8")) as EgressProxyConfig;
    if (!Array.isArray(config.rules)) fail("config needs rules (an array)");
    // A sandbox can make the proxy log without end (a refused request in a loop): capped and rotated.
    write = config.log ? cappedLog(config.log.path, config.log.maxBytes) : (line) => void process.stderr.write(line);
  }
  const log: Log = (e) => write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`);
  const server = createEgressProxy(config, log, systemResolve, port);
  // A client that hangs up mid-tunnel is normal; the proxy must not die of it.
  server.on("requestFailed", ({ error }: { error: Error }) => log({ msg: "egress request failed", error: error.message }));
  await (values.port ? server.listen() : listenOnSocket(server, values.socket!)).catch((err: Error) => fail(`cannot listen: ${err.message}`));
  log({ msg: "egress proxy listening", ...(values.port ? { port } : { rules: new EgressMatcher(config.rules, config.internal ?? []).describe() }) });
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void server.close(true).then(() => process.exit(0)));
}
