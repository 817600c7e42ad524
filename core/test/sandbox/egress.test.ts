// Egress allow-lists on local sandboxes, enforced for real: real bubblewrap (the sandbox keeps its
// own empty network namespace), the real host-side egress proxy process, curl inside the sandbox,
// a loopback HTTP server on the host standing in for an allowed API. Names resolve through the
// driver's static host map (no DNS here): api.test and other.test both point at that server, so
// only the policy decides which one is reachable.
import http from "node:http";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os, { networkInterfaces } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseEgressAllowList, parseEgressEntry } from "../../src/sandbox/egress.js";
import { isSameProcessAlive } from "../../src/sandbox/local-process.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";
import { EgressMatcher } from "@keel/sandbox/egress-rules";
import { waitFor } from "@keel/test/db";
import { policy, useSandboxEnv } from "./helpers.js";

const env = useSandboxEnv();
let api: http.Server;
let port: number;
const hosts = { "api.test": "127.0.0.1", "other.test": "127.0.0.1" };
let n = 0;
const session = () => `egress-${process.pid}-${++n}`;
const TEAM = "team-egress";

beforeAll(async () => {
  api = http.createServer((req, res) => res.end(`hello from ${req.headers.host}${req.url}\n`));
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", r));
  port = (api.address() as AddressInfo).port;
});
afterAll(() => void api?.close());

describe("egress allow-list (local driver)", () => {
  it("reaches an allowed host through the proxy, over plain HTTP and a CONNECT tunnel", async () => {
    const d = env.driver({ egressHosts: hosts });
    const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["api.test"] } }));
    const plain = await d.exec(h, { command: `curl -sS --max-time 10 http://api.test:${port}/plain` });
    expect(plain.stderr).toBe("");
    expect(plain.stdout).toBe(`hello from api.test:${port}/plain\n`);
    // --proxytunnel: CONNECT, as every HTTPS client does; the tunnel carries any TCP.
    const tunnel = await d.exec(h, { command: `curl -sS --max-time 10 --proxytunnel http://api.test:${port}/tunnel` });
    expect(tunnel.stdout).toBe(`hello from api.test:${port}/tunnel\n`);
    const vars = await d.exec(h, { command: "echo $HTTPS_PROXY $http_proxy $NO_PROXY" });
    expect(vars.stdout.trim()).toBe("http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1");
  });

  it("runs from a node the sandbox's uid cannot reach (under a 0700 dir, as nvm's or npm start's under /root): runtime, proxy and commands", async () => {
    // Not under /tmp: the sandbox has its own /tmp, which would hide the bound node either way.
    const hidden = await mkdtemp(path.join(os.homedir(), ".keel-private-node-"));
    try {
      await chmod(hidden, 0o700);
      const node = path.join(hidden, "bin", "node");
      await mkdir(path.dirname(node));
      await copyFile(process.execPath, node);
      await chmod(node, 0o755);
      const d = env.driver({ egressHosts: hosts, nodePath: node });
      const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["api.test"] } }));
      const r = await d.exec(h, { command: `curl -sS --max-time 10 http://api.test:${port}/private && ${node} -e 'console.log(6 * 7)'` });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(`hello from api.test:${port}/private\n42\n`);
      await d.release(h);
    } finally {
      await rm(hidden, { recursive: true, force: true });
    }
  });

  it("refuses a host not on the list with 403 and the reason, over HTTP and CONNECT", async () => {
    const d = env.driver({ egressHosts: hosts });
    const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["api.test", "*.example.com:443"] } }));
    const r = await d.exec(h, { command: `curl -sS --max-time 10 -i http://other.test:${port}/` });
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).toContain(`egress to other.test:${port} is not allowed by this sandbox's policy (allowed: api.test, *.example.com:443)`);
    const c = await d.exec(h, { command: `curl -sS --max-time 10 --proxytunnel http://other.test:${port}/` });
    expect(c.exitCode).not.toBe(0);
    expect(c.stderr).toMatch(/CONNECT tunnel failed, response 403/);
    // A port not on the list is refused like a host: *.example.com is open on 443 only.
    const p = await d.exec(h, { command: "curl -sS --max-time 10 -i http://www.example.com:80/" });
    expect(p.stdout).toMatch(/^HTTP\/1\.1 403/);
    // The refusals are logged on the host, beside the sandbox.
    const log = await readFile(path.join(env.baseDir, TEAM, h.sessionId, "egress.log"), "utf8");
    expect(log).toContain('"msg":"egress refused","host":"other.test"');
  });

  it("fails closed: a program that ignores the proxy reaches nothing, not even an allowed host", async () => {
    const d = env.driver({ egressHosts: hosts });
    const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["api.test", "127.0.0.1"] } }));
    const direct = await d.exec(h, { command: `curl -sS --max-time 10 --noproxy '*' http://127.0.0.1:${port}/` });
    expect(direct.exitCode).not.toBe(0);
    expect(direct.stderr).toMatch(/Failed to connect|Couldn't connect/);
    const byName = await d.exec(h, { command: `curl -sS --max-time 10 --noproxy '*' http://api.test:${port}/` });
    expect(byName.stderr).toMatch(/Could not resolve host/);
    const tcp = await d.exec(h, {
      command: `node -e "require('net').connect(${port},'127.0.0.1').on('connect',()=>{console.log('CONNECTED');process.exit(0)}).on('error',e=>{console.log('REFUSED',e.code);process.exit(3)})"`,
    });
    expect(tcp.stdout).toMatch(/REFUSED ECONNREFUSED/);
    const ifaces = await d.exec(h, { command: "cat /proc/net/dev | tail -n +3 | cut -d: -f1" });
    expect(ifaces.stdout.trim()).toBe("lo");
    // The proxy's socket is read-only to the sandbox: it cannot be replaced or removed.
    const rm = await d.exec(h, { command: "rm -f /run/keel-egress/proxy.sock; touch /run/keel-egress/x" });
    expect(rm.stderr).toMatch(/Read-only file system/);
  });

  it("does not let a listed name that resolves to loopback reach the host's own services", async () => {
    const d = env.driver(); // no static map: localhost resolves through the host's resolver
    const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["localhost"] } }));
    const r = await d.exec(h, { command: `curl -sS --max-time 10 -i --noproxy '' -x http://127.0.0.1:3128 http://localhost:${port}/` });
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403/);
    expect(r.stdout).toMatch(/localhost resolves to .*127\.0\.0\.1 \(loopback.*an internal address/); // ::1 may come first
  });

  it("does not open loopback or this host's own address to an address rule 0.0.0.0/0 (issue 14 item 5)", async () => {
    const own = Object.values(networkInterfaces())
      .flatMap((l) => l ?? [])
      .find((i) => i.family === "IPv4" && !i.internal)!.address;
    const onOwn = http.createServer((_req, res) => res.end("host service\n"));
    await new Promise<void>((r) => onOwn.listen(0, own, r));
    try {
      const ownPort = (onOwn.address() as AddressInfo).port;
      const d = env.driver();
      const h = await d.acquire(session(), TEAM, policy({ egress: { allow: ["0.0.0.0/0"] } }));
      for (const url of [`http://127.0.0.1:${port}/`, `http://${own}:${ownPort}/`, "http://169.254.169.254/latest/meta-data/"]) {
        // --noproxy '': NO_PROXY names 127.0.0.1, and curl would go direct (and find nothing).
        const r = await d.exec(h, { command: `curl -sS --max-time 10 -i --noproxy '' ${url}` });
        expect(r.stdout, url).toMatch(/^HTTP\/1\.1 403/);
        expect(r.stdout, url).toMatch(/is an internal address, which this sandbox's allow-list does not open/);
        expect(r.stdout).not.toMatch(/hello from|host service/);
      }
      // The operator can open one range; only that one opens.
      const open = await env.driver({ egressInternalAllow: [`${own}/32`] }).acquire(session(), TEAM, policy({ egress: { allow: ["0.0.0.0/0"] } }));
      expect((await d.exec(open, { command: `curl -sS --max-time 10 http://${own}:${ownPort}/` })).stdout).toBe("host service\n");
      expect((await d.exec(open, { command: `curl -sS --max-time 10 -i --noproxy '' http://127.0.0.1:${port}/` })).stdout).toMatch(/^HTTP\/1\.1 403/);
    } finally {
      onOwn.close();
    }
  });

  it("keeps no proxy at all for policy none", async () => {
    const d = env.driver({ egressHosts: hosts });
    const h = await d.acquire(session(), TEAM, policy());
    const rec = await env.record(TEAM, h.sessionId);
    expect(rec).not.toHaveProperty("egressPid");
    const r = await d.exec(h, {
      command: `env | grep -ci proxy; ls /run/keel-egress; curl -sS --max-time 5 -x http://127.0.0.1:3128 http://api.test:${port}/`,
    });
    expect(r.stdout.trim()).toBe("0");
    expect(r.stderr).toMatch(/No such file or directory/);
    expect(r.stderr).toMatch(/Failed to connect|Couldn't connect/);
  });

  it("the proxy outlives a worker and is restarted with the sandbox when it died", async () => {
    const p = policy({ egress: { allow: ["api.test"] } });
    process.env.KEEL_TEST_WORKER_SECRET = "worker-secret-5e2a90";
    let h;
    try {
      h = await env.driver({ egressHosts: hosts }).acquire(session(), TEAM, p);
    } finally {
      delete process.env.KEEL_TEST_WORKER_SECRET;
    }
    const first = (await env.record(TEAM, h.sessionId)) as unknown as { egressPid: number; egressStartTime: string };
    // The proxy runs on the host as the sandbox's uid: it gets a fixed environment, never the
    // worker's (database URL, secrets key), which that uid could read in /proc/PID/environ.
    const environ = (await readFile(`/proc/${first.egressPid}/environ`, "utf8")).split("\0").filter(Boolean);
    // LAUNCH_ENV, plus at most what the launching bash sets itself (PWD, SHLVL, _).
    expect(environ).toEqual(expect.arrayContaining(["LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"]));
    expect(environ.map((v) => v.slice(0, v.indexOf("="))).filter((n) => !["LANG", "PATH", "PWD", "SHLVL", "_"].includes(n))).toEqual([]);
    // Another worker (a new driver instance) reattaches to the same proxy.
    const again = await env.driver({ egressHosts: hosts }).acquire(h.sessionId, TEAM, p);
    expect(((await env.record(TEAM, h.sessionId)) as unknown as { egressPid: number }).egressPid).toBe(first.egressPid);
    process.kill(first.egressPid, "SIGKILL");
    await waitFor(() => !isSameProcessAlive(first.egressPid, first.egressStartTime), { what: "the egress proxy to die" });
    const d = env.driver({ egressHosts: hosts });
    const restarted = await d.acquire(again.sessionId, TEAM, p);
    const second = (await env.record(TEAM, h.sessionId)) as unknown as { egressPid: number; egressStartTime: string };
    expect(second.egressPid).not.toBe(first.egressPid);
    expect(isSameProcessAlive(second.egressPid, second.egressStartTime)).toBe(true);
    expect((await d.exec(restarted, { command: `curl -sS --max-time 10 http://api.test:${port}/back` })).stdout).toBe(`hello from api.test:${port}/back\n`);
    await d.release(restarted);
    expect(isSameProcessAlive(second.egressPid, second.egressStartTime)).toBe(false);
  });
});

describe("egress allow-list grammar and matching", () => {
  it("parses names, wildcards, addresses, ranges and ports; refuses anything else with the entry named", () => {
    expect(parseEgressAllowList(["API.Example.com.", "*.github.com:443", "10.0.0.0/8", "[2001:db8::/32]:443", "::1"])).toEqual([
      { kind: "host", host: "api.example.com" },
      { kind: "suffix", suffix: "github.com", port: 443 },
      { kind: "cidr", address: "10.0.0.0", prefix: 8, family: "ipv4" },
      { kind: "cidr", address: "2001:db8::", prefix: 32, family: "ipv6", port: 443 },
      { kind: "cidr", address: "::1", prefix: 128, family: "ipv6" },
    ]);
    for (const bad of ["http://x.com", "x.com:0", "x.com:http", "*.", "a b", "10.0.0.0/33", "300.1.1.1", "*.*.com", "x.com/path"]) {
      expect(parseEgressEntry(bad), bad).toBeInstanceOf(Error);
    }
    expect(() => parseSandboxPolicy({ egress: { allow: ["ok.com", "http://bad.com"] } })).toThrow(
      /http:\/\/bad\.com.{1,3} is a URL; give the host name only \(e\.g\. bad\.com\)/,
    );
  });

  it("matches exact names, subdomains of a wildcard (not the bare domain), ports and ranges", () => {
    const m = new EgressMatcher(parseEgressAllowList(["api.example.com", "*.github.com:443", "140.82.112.0/20:8443"]));
    const ok = (host: string, port: number, addresses: string[]) => m.decide(host, port, addresses).allowed;
    expect(ok("api.example.com", 80, ["93.184.216.34"])).toBe(true);
    expect(ok("API.EXAMPLE.COM.", 443, ["93.184.216.34"])).toBe(true);
    expect(ok("www.example.com", 80, ["93.184.216.34"])).toBe(false);
    expect(ok("raw.github.com", 443, ["140.82.112.3"])).toBe(true);
    expect(ok("a.b.github.com", 443, ["140.82.112.3"])).toBe(true);
    expect(ok("github.com", 443, ["140.82.112.3"])).toBe(false);
    expect(ok("raw.github.com", 80, ["140.82.112.3"])).toBe(false);
    expect(ok("evilgithub.com", 443, ["140.82.112.3"])).toBe(false);
    expect(ok("140.82.112.9", 8443, ["140.82.112.9"])).toBe(true);
    expect(ok("any.name", 8443, ["140.82.112.9"])).toBe(true); // ranges match the address, as NetworkPolicy does
    expect(ok("140.82.112.9", 443, ["140.82.112.9"])).toBe(false);
    expect(ok("api.example.com", 80, ["169.254.169.254"])).toBe(false); // cloud metadata via a listed name
    expect(ok("api.example.com", 80, ["::ffff:127.0.0.1"])).toBe(false);
    // Every allowed address is offered to the connection (IPv6 and IPv4), none that is not.
    expect(m.decide("api.example.com", 80, ["2606:2800::1", "127.0.0.1", "93.184.216.34"])).toEqual({
      allowed: true,
      addresses: ["2606:2800::1", "93.184.216.34"],
    });
  });
});
