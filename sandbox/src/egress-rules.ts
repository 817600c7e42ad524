// Matching a destination against a sandbox's egress rules (parsed from the policy's allow-list by
// core/src/sandbox/egress.ts). Node built-ins only: this runs in the host-side egress proxy.
import { BlockList, isIP } from "node:net";

export type EgressRule =
  | { kind: "host"; host: string; port?: number }
  | { kind: "suffix"; suffix: string; port?: number }
  | { kind: "cidr"; address: string; prefix: number; family: "ipv4" | "ipv6"; port?: number };

/** `addresses`: the resolved addresses the connection may use (the client tries them in turn). */
export type EgressDecision = { allowed: true; addresses: string[] } | { allowed: false; reason: string };

// A name that resolves here is the host itself or its link (cloud metadata at 169.254.169.254):
// reachable only through an address rule that names it, never through a name rule alone.
const SPECIAL = new BlockList();
SPECIAL.addSubnet("127.0.0.0", 8, "ipv4");
SPECIAL.addSubnet("169.254.0.0", 16, "ipv4");
SPECIAL.addSubnet("0.0.0.0", 8, "ipv4");
SPECIAL.addSubnet("224.0.0.0", 4, "ipv4");
SPECIAL.addAddress("::1", "ipv6");
SPECIAL.addAddress("::", "ipv6");
SPECIAL.addSubnet("fe80::", 10, "ipv6");
SPECIAL.addSubnet("ff00::", 8, "ipv6");

/** Lower-case, no trailing dot, no IPv6 brackets; IPv4-mapped IPv6 as plain IPv4. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase().replace(/\.$/, "");
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped ? mapped[1]! : h;
}

export class EgressMatcher {
  private readonly ranges: { list: BlockList; port?: number }[];
  constructor(readonly rules: EgressRule[]) {
    this.ranges = rules.flatMap((r) => {
      if (r.kind !== "cidr") return [];
      const list = new BlockList();
      list.addSubnet(r.address, r.prefix, r.family);
      return [{ list, ...(r.port ? { port: r.port } : {}) }];
    });
  }

  /** A name rule (exact or *.suffix) that allows this host name and port. */
  nameAllowed(host: string, port: number): boolean {
    const h = normalizeHost(host);
    return this.rules.some((r) => (r.port === undefined || r.port === port) && ((r.kind === "host" && r.host === h) || (r.kind === "suffix" && h.endsWith(`.${r.suffix}`))));
  }

  /** An address rule that covers this address and port. */
  addressAllowed(address: string, port: number): boolean {
    const a = normalizeHost(address);
    const family = isIP(a) === 6 ? "ipv6" : "ipv4";
    return this.ranges.some((r) => (r.port === undefined || r.port === port) && r.list.check(a, family));
  }

  /**
   * The decision for one connection: `host` as the client asked for it, `addresses` what it
   * resolved to (the proxy connects to the returned address only, so a second lookup cannot
   * change the answer). `trusted`: the addresses came from the operator's static host map.
   */
  decide(host: string, port: number, addresses: string[], trusted = false): EgressDecision {
    const h = normalizeHost(host);
    const byName = !isIP(h) && this.nameAllowed(h, port);
    const ok = addresses.map(normalizeHost).filter((address) =>
      this.addressAllowed(address, port) || (byName && (trusted || !SPECIAL.check(address, isIP(address) === 6 ? "ipv6" : "ipv4"))));
    if (ok.length > 0) return { allowed: true, addresses: ok };
    if (byName) {
      return { allowed: false, reason: `${h} resolves to ${addresses.join(", ")}, a loopback or link-local address, which a host name rule does not open; allow the address itself to reach it` };
    }
    return { allowed: false, reason: `egress to ${h}:${port} is not allowed by this sandbox's policy (allowed: ${this.describe()})` };
  }

  describe(): string {
    if (this.rules.length === 0) return "nothing";
    return this.rules
      .map((r) => {
        if (r.kind !== "cidr") return `${r.kind === "host" ? r.host : `*.${r.suffix}`}${r.port ? `:${r.port}` : ""}`;
        const base = r.prefix === (r.family === "ipv4" ? 32 : 128) ? r.address : `${r.address}/${r.prefix}`;
        return r.port ? `${r.family === "ipv6" ? `[${base}]` : base}:${r.port}` : base;
      })
      .join(", ");
  }
}
