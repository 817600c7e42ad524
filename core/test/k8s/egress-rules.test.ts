// A team's egress allow-list as NetworkPolicy rules means what it means on the local driver: an
// address rule never reaches an internal address by itself. `0.0.0.0/0` ("the internet", the only
// way to say it without host names) keeps the metadata server, the cluster's Services and API
// server, pods and nodes out; the API server accepts the rules as written (server-side dry run).
import { expect, test } from "vitest";
import { kubectl, startControlPlane, createTestNamespace } from "@keel/controlplane/harness";
import { egressRules } from "../../src/sandbox/k8s/objects.ts";

const rules = (allow: string[], internal: string[] = []) =>
  egressRules({ allow } as never, internal) as { to: { ipBlock: { cidr: string; except?: string[] } }[]; ports?: unknown[] }[];
const block = (allow: string, internal: string[] = []) => rules([allow], internal)[0]!.to[0]!.ipBlock;

test("0.0.0.0/0 and ::/0 leave out every internal range: metadata, private networks, CGNAT, loopback, ULA, link-local, NAT64", () => {
  const v4 = block("0.0.0.0/0");
  expect(v4.cidr).toBe("0.0.0.0/0");
  for (const r of ["169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "0.0.0.0/8"])
    expect(v4.except).toContain(r);
  const v6 = block("::/0");
  for (const r of ["fc00::/7", "fe80::/10", "64:ff9b::/96", "::ffff:0:0:0/96"]) expect(v6.except).toContain(r);
  // A range inside another left-out range is not listed twice (::1/128 is inside ::/96).
  expect(v6.except).not.toContain("::1/128");
  expect(new Set(v6.except).size).toBe(v6.except!.length);
});

test("a public range gets no exception; its port is kept; the network address is what Kubernetes gets", () => {
  expect(rules(["140.82.112.0/20:443"])).toEqual([{ to: [{ ipBlock: { cidr: "140.82.112.0/20" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
  expect(block("140.82.112.7/20").cidr).toBe("140.82.112.0/20");
  expect(block("[2606:50c0::1/32]:443".replace(/^\[|\]:443$/g, ""))).toEqual({ cidr: "2606:50c0::/32" });
  // 8.0.0.0/7 holds no internal range; 96.0.0.0/4 holds CGNAT 100.64.0.0/10.
  expect(block("8.0.0.0/7").except).toBeUndefined();
  expect(block("96.0.0.0/4").except).toEqual(["100.64.0.0/10"]);
});

test("an entry inside an internal range fails with the reason, unless the operator opened it (KEEL_SANDBOX_EGRESS_INTERNAL)", () => {
  expect(() => rules(["169.254.169.254/32"])).toThrow(
    /"169.254.169.254\/32" is an internal address \(link-local \(169.254.0.0\/16, cloud metadata\)\).*KEEL_SANDBOX_EGRESS_INTERNAL/,
  );
  expect(() => rules(["10.96.0.1:443"])).toThrow(/private network \(10.0.0.0\/8\)/);
  expect(() => rules(["fd00:ec2::254"])).toThrow(/unique local/);
  expect(rules(["10.244.1.7/32:8081"], ["10.244.0.0/16"])).toEqual([
    { to: [{ ipBlock: { cidr: "10.244.1.7/32" } }], ports: [{ protocol: "TCP", port: 8081 }] },
  ]);
  // An opened range inside a cut-out one gets a rule of its own; the rest stays cut out.
  const wide = rules(["0.0.0.0/0:443"], ["10.244.0.0/16"]);
  expect(wide).toHaveLength(2);
  expect(wide[0]!.to[0]!.ipBlock.except).toContain("10.0.0.0/8");
  expect(wide[0]!.to[0]!.ipBlock.except).toContain("169.254.0.0/16");
  expect(wide[1]).toEqual({ to: [{ ipBlock: { cidr: "10.244.0.0/16" } }], ports: [{ protocol: "TCP", port: 443 }] });
  expect(rules(["140.82.112.0/20"], ["10.244.0.0/16"])).toHaveLength(1);
  const opened = block("0.0.0.0/0", ["10.0.0.0/8"]);
  expect(opened.except).not.toContain("10.0.0.0/8");
  expect(opened.except).toContain("169.254.0.0/16");
});

test("host names: refused with what to do when the installation has no egress proxy; with one, a single rule to the proxy's pods and the address rules as before", () => {
  expect(() => rules(["api.github.com"])).toThrow(/"api.github.com" is a host name, and this installation has no egress proxy \(KEEL_SANDBOX_EGRESS_PROXY/);
  const proxy = { namespace: "keel", podLabels: { "app.kubernetes.io/component": "egress-proxy" }, port: 3128 };
  expect(egressRules({ allow: ["api.github.com:443", "*.pypi.org", "140.82.112.0/20:443"] } as never, [], proxy)).toEqual([
    { to: [{ ipBlock: { cidr: "140.82.112.0/20" } }], ports: [{ protocol: "TCP", port: 443 }] },
    {
      to: [
        {
          namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "keel" } },
          podSelector: { matchLabels: { "app.kubernetes.io/component": "egress-proxy" } },
        },
      ],
      ports: [{ protocol: "TCP", port: 3128 }],
    },
  ]);
  // Addresses only: no way to the proxy.
  expect(egressRules({ allow: ["140.82.112.0/20:443"] } as never, [], proxy)).toHaveLength(1);
  expect(() => egressRules({ allow: ["http://api.github.com"] } as never, [], proxy)).toThrow(/is a URL/);
});

test("the API server accepts the rules as a NetworkPolicy (server-side dry run)", async () => {
  await startControlPlane();
  const ns = await createTestNamespace("kz-egress");
  try {
    const np = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "egress", namespace: ns.name },
      spec: { podSelector: {}, policyTypes: ["Egress"], egress: rules(["0.0.0.0/0", "::/0", "140.82.112.0/20:443", "96.0.0.0/4"]) },
    };
    const r = await kubectl(["create", "--dry-run=server", "-f", "-"], { input: JSON.stringify(np), allowFailure: true });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
  } finally {
    await ns.cleanup();
  }
});
