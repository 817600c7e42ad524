// Matching a destination against a sandbox's egress rules (parsed from the policy's allow-list by
// core/src/sandbox/egress.ts). Node built-ins only: this runs in the host-side egress proxy.
import { BlockList, isIP } from "node:net";
import { internalAddressReason } from "./internal-addresses.js";

export type EgressRule =
  | { kind: "host"; host: string; port?: number }
  | { kind: "suffix"; suffix: string; port?: number }
  | { kind: "cidr"; address: string; prefix: number; family: "ipv4" | "ipv6"; port?: number };

/** `addresses`: the resolved addresses the connection may use (the client tries them in turn). */
export type EgressDecision = { allowed: true; addresses: string[] } | { allowed: false; reason: string };

/** Lower-case, no trailing dot, no IPv6 brackets; IPv4-mapped IPv6 as plain IPv4. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase().replace(/\.$/, "");
  if (h.startsWith("[") && h.endsWith("]")) h = h.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped ? mapped[1]! : h;
}

function rangesOf(rules: EgressRule[]): { list: BlockList; port?: number }[] {
  return rules.flatMap((r) => {
    if (r.kind !== "cidr") return [];
    const list = new BlockList();
    list.addSubnet(r.address, r.prefix, r.family);
    return [{ list, ...(r.port ? { port: r.port } : {}) }];
  });
}

function covers(ranges: { list: BlockList; port?: number }[], address: string, port: number): boolean {
  const family = isIP(address) === 6 ? "ipv6" : "ipv4";
  return ranges.some((r) => (r.port === undefined || r.port === port) && r.list.check(address, family));
}

/**
 * `rules`: the team's allow-list. `internal`: address rules the operator opened inside internal
 * space (internal-addresses.ts: loopback, link-local, private, CGNAT, ULA, NAT64, this host's own
 * addresses). A team's rules never reach an internal address by themselves, whether through a
 * name that resolves there or an address rule as wide as 0.0.0.0/0: the team writes the policy,
 * the operator owns the network the host sits in.
 */
export class EgressMatcher {
  private readonly ranges: { list: BlockList; port?: number }[];
  private readonly internal: { list: BlockList; port?: number }[];
  constructor(
    readonly rules: EgressRule[],
    internal: EgressRule[] = [],
  ) {
    this.ranges = rangesOf(rules);
    this.internal = rangesOf(internal);
  }

  /** A name rule (exact or *.suffix) that allows this host name and port. */
  nameAllowed(host: string, port: number): boolean {
    const h = normalizeHost(host);
    return this.rules.some(
      (r) => (r.port === undefined || r.port === port) && ((r.kind === "host" && r.host === h) || (r.kind === "suffix" && h.endsWith(`.${r.suffix}`))),
    );
  }

  /** An address rule that covers this address and port. */
  addressAllowed(address: string, port: number): boolean {
    return covers(this.ranges, normalizeHost(address), port);
  }

  /**
   * The decision for one connection: `host` as the client asked for it, `addresses` what it
   * resolved to (the proxy connects to the returned address only, so a second lookup cannot
   * change the answer). `trusted`: the addresses came from the operator's static host map.
   */
  decide(host: string, port: number, addresses: string[], trusted = false): EgressDecision {
    const h = normalizeHost(host);
    const byName = !isIP(h) && this.nameAllowed(h, port);
    const internal: string[] = [];
    const ok = addresses.map(normalizeHost).filter((address) => {
      if (!byName && !this.addressAllowed(address, port)) return false;
      // The operator's static host map is trusted like /etc/hosts: its address is the operator's choice.
      if (trusted || covers(this.internal, address, port)) return true;
      const why = internalAddressReason(address);
      if (why !== null) internal.push(`${address} (${why})`);
      return why === null;
    });
    if (ok.length > 0) return { allowed: true, addresses: ok };
    if (internal.length > 0) {
      const what = isIP(h) ? `${internal.join(", ")} is an internal address` : `${h} resolves to ${internal.join(", ")}, an internal address`;
      return { allowed: false, reason: `${what}, which this sandbox's allow-list does not open (only the operator can: KEEL_SANDBOX_EGRESS_INTERNAL)` };
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
