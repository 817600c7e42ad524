// The egress proxy against internal addresses (issue 14 item 5): the real proxy on a real unix
// socket, real listeners on this host's loopback and own interface address. Names resolve through
// the proxy's resolver seam (a stand-in for DNS answering with internal addresses, as a hostile or
// split-horizon resolver would); the operator's static host map is not used, since it is trusted.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Server } from "proxy-chain";
import { createEgressProxy, listenOnSocket, type EgressProxyConfig } from "../src/egress-proxy.js";
import { egressGrantKey, signEgressGrant, verifyEgressGrant } from "../src/egress-grant.js";
import { EgressMatcher, type EgressRule } from "../src/egress-rules.js";

const own = Object.values(networkInterfaces())
  .flatMap((l) => l ?? [])
  .find((i) => i.family === "IPv4" && !i.internal)?.address;
let dir: string;
let hostListener: net.Server;
let loopListener: net.Server;
let hostPort: number;
let loopPort: number;
const accepted = { host: 0, loop: 0 };
const proxies: Server[] = [];

function listen(address: string, count: "host" | "loop"): Promise<net.Server> {
  const s = net.createServer((c) => {
    accepted[count]++;
    c.end("hello\n");
  });
  return new Promise((resolve) => s.listen(0, address, () => resolve(s)));
}

beforeAll(async () => {
  if (!own) throw new Error("this host has no non-loopback IPv4 address to test with");
  dir = await mkdtemp(path.join(tmpdir(), "keel-egress-"));
  hostListener = await listen(own, "host");
  loopListener = await listen("127.0.0.1", "loop");
  hostPort = (hostListener.address() as net.AddressInfo).port;
  loopPort = (loopListener.address() as net.AddressInfo).port;
});
afterAll(async () => {
  for (const p of proxies) await p.close(true);
  hostListener?.close();
  loopListener?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function proxy(config: EgressProxyConfig, names: Record<string, string[]> = {}): Promise<string> {
  const server = createEgressProxy(
    config,
    () => {},
    async (host) => names[host] ?? [],
  );
  proxies.push(server);
  const socket = path.join(dir, `p${proxies.length}.sock`);
  await listenOnSocket(server, socket);
  return socket;
}

/**
 * Sends CONNECT target through the proxy (a unix socket path, or a loopback TCP port), with
 * `password` as the Basic credentials' password when given; the status line and whatever the
 * tunnel then carried.
 */
function connectThrough(proxy: string | number, target: string, password?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = typeof proxy === "number" ? net.connect(proxy, "127.0.0.1") : net.connect(proxy);
    let text = "";
    const auth = password === undefined ? "" : `Proxy-Authorization: Basic ${Buffer.from(`keel:${password}`).toString("base64")}\r\n`;
    c.on("connect", () => c.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`));
    c.on("data", (d) => {
      text += d.toString("utf8");
      // An established tunnel: the listener answers "hello" and closes; a refusal ends the reply.
      if (/hello\n$/.test(text)) c.end();
    });
    c.on("end", () => resolve(text));
    c.on("close", () => resolve(text));
    c.on("error", reject);
  });
}

const cidr = (address: string, prefix: number, family: "ipv4" | "ipv6" = "ipv4"): EgressRule => ({ kind: "cidr", address, prefix, family });

describe("egress proxy: internal addresses", () => {
  it("a name rule never reaches what the name resolves to when that is internal", () => {
    const m = new EgressMatcher([{ kind: "suffix", suffix: "test" }]);
    for (const [address, why] of [
      ["10.0.0.5", /private network/],
      ["172.17.0.1", /private network/],
      ["192.168.1.1", /private network/],
      ["100.100.100.200", /CGNAT/],
      ["fd00:ec2::254", /unique local/],
      ["64:ff9b::a9fe:a9fe", /NAT64/],
      ["169.254.169.254", /metadata/],
      ["::ffff:127.0.0.1", /loopback/],
      [own!, /./],
    ] as const) {
      const d = m.decide("api.test", 443, [address]);
      expect(d.allowed, address).toBe(false);
      expect(!d.allowed && d.reason, address).toMatch(why);
      expect(!d.allowed && d.reason).toMatch(/internal address, which this sandbox's allow-list does not open/);
    }
    // A public answer still passes, and only the public half of a mixed answer is used.
    expect(m.decide("api.test", 443, ["10.0.0.5", "93.184.216.34"])).toEqual({ allowed: true, addresses: ["93.184.216.34"] });
  });

  it("an address rule as wide as 0.0.0.0/0 or ::/0 does not open loopback, metadata or private ranges", () => {
    const m = new EgressMatcher([cidr("0.0.0.0", 0), cidr("::", 0, "ipv6")]);
    for (const a of ["127.0.0.1", "169.254.169.254", "10.1.2.3", "100.100.100.200", "::1", "fd00:ec2::254", "0:0:0:0:0:ffff:7f00:1"]) {
      expect(m.decide(a, 80, [a]).allowed, a).toBe(false);
    }
    expect(m.decide("93.184.216.34", 80, ["93.184.216.34"]).allowed).toBe(true);
  });

  it("refuses a name resolving to this host's own address, and 127.0.0.1 under 0.0.0.0/0, before any connection", async () => {
    const socket = await proxy({ rules: [{ kind: "host", host: "own.test" }, cidr("0.0.0.0", 0)] }, { "own.test": [own!] });
    const byName = await connectThrough(socket, `own.test:${hostPort}`);
    expect(byName).toMatch(/^HTTP\/1\.1 403/);
    expect(byName).toMatch(/own\.test resolves to .*this host's own address|own\.test resolves to .*\(/);
    const loop = await connectThrough(socket, `127.0.0.1:${loopPort}`);
    expect(loop).toMatch(/^HTTP\/1\.1 403/);
    expect(loop).toContain("loopback");
    expect(accepted).toEqual({ host: 0, loop: 0 });
  });

  it("reaches an internal address the operator opened, and nothing beside it", async () => {
    const socket = await proxy(
      {
        rules: [
          { kind: "host", host: "own.test" },
          { kind: "host", host: "loop.test" },
        ],
        internal: [cidr(own!, 32)],
      },
      { "own.test": [own!], "loop.test": ["127.0.0.1"] },
    );
    expect(await connectThrough(socket, `own.test:${hostPort}`)).toMatch(/^HTTP\/1\.1 200[^]*hello\n$/);
    expect(await connectThrough(socket, `loop.test:${loopPort}`)).toMatch(/^HTTP\/1\.1 403/);
    expect(accepted).toEqual({ host: 1, loop: 0 });
  });
});

describe("egress proxy: the shared Kubernetes proxy (signed grants)", () => {
  const key = egressGrantKey(randomBytes(32));
  const grant = (rules: EgressRule[], internal: EgressRule[] = []) => signEgressGrant(key, { team: "t1", template: "default", rules, internal });

  /** The shared proxy on a TCP port, as the egress-proxy Deployment runs it; returns its port. */
  async function shared(names: Record<string, string[]>): Promise<number> {
    const server = createEgressProxy(
      { rules: [], grantKey: key },
      () => {},
      async (host) => names[host] ?? [],
      0,
    );
    proxies.push(server);
    await server.listen();
    return server.port;
  }

  it("applies each connection's grant: its listed name passes, an unlisted one gets 403; no grant, another key's or an altered one gets 407", async () => {
    const before = { ...accepted };
    const port = await shared({ "own.test": [own!], "other.test": [own!] });
    // The operator opened this host's address (as KEEL_SANDBOX_EGRESS_INTERNAL would): signed into the grant.
    const good = grant([{ kind: "host", host: "own.test" }], [cidr(own!, 32)]);
    expect(await connectThrough(port, `own.test:${hostPort}`, good)).toMatch(/^HTTP\/1\.1 200[^]*hello\n$/);
    expect(await connectThrough(port, `other.test:${hostPort}`, good)).toMatch(/^HTTP\/1\.1 403[^]*not allowed by this sandbox's policy/);
    // A team widening its own grant (rules edited, signature kept), a grant signed with another
    // installation's key, garbage, none at all: all 407, nothing connected.
    const [body, sig] = good.split(".");
    const widened = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body!, "base64url").toString()), rules: [{ kind: "host", host: "other.test" }] }),
    ).toString("base64url");
    const foreign = signEgressGrant(egressGrantKey(randomBytes(32)), {
      team: "t1",
      template: "default",
      rules: [{ kind: "host", host: "own.test" }],
      internal: [cidr(own!, 32)],
    });
    for (const password of [`${widened}.${sig}`, foreign, "not-a-grant", undefined]) {
      expect(await connectThrough(port, `own.test:${hostPort}`, password)).toMatch(/^HTTP\/1\.1 407/);
    }
    // Without the operator's opening, the same name (internal address) is refused even when listed.
    expect(await connectThrough(port, `own.test:${hostPort}`, grant([{ kind: "host", host: "own.test" }]))).toMatch(/^HTTP\/1\.1 403/);
    expect(accepted.host - before.host).toBe(1);
    expect(verifyEgressGrant(key, good)?.rules).toEqual([{ kind: "host", host: "own.test" }]);
  });
});
