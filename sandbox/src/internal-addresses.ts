// Which addresses are "internal": the host itself, its links, private and shared networks, and
// the translation prefixes that lead back into them. One list for every place that connects on a
// team's behalf: the sandbox egress proxy (a name rule never reaches these) and the workers'
// outbound calls (provider and MCP URLs). Node built-ins only: this also runs in the host-side
// egress proxy bundle.
//
// Why so many ranges: cloud metadata is not only 169.254.169.254 (Alibaba answers on
// 100.100.100.200 in CGNAT space, AWS on fd00:ec2::254 in IPv6 ULA space), NAT64 (64:ff9b::/96)
// and IPv4-mapped forms reach IPv4 hosts through an IPv6 literal, and a name may resolve to the
// host's own interface address, where `keel web` listens by default.
import { BlockList, isIP } from "node:net";
import { networkInterfaces } from "node:os";

/** Every internal range: [network, prefix, family, what it is]. */
export const INTERNAL_RANGES: ReadonlyArray<readonly [string, number, "ipv4" | "ipv6", string]> = [
  ["0.0.0.0", 8, "ipv4", "this network (0.0.0.0/8)"],
  ["10.0.0.0", 8, "ipv4", "private network (10.0.0.0/8)"],
  ["100.64.0.0", 10, "ipv4", "shared address space (100.64.0.0/10, CGNAT; Alibaba Cloud metadata)"],
  ["127.0.0.0", 8, "ipv4", "loopback (127.0.0.0/8)"],
  ["169.254.0.0", 16, "ipv4", "link-local (169.254.0.0/16, cloud metadata)"],
  ["172.16.0.0", 12, "ipv4", "private network (172.16.0.0/12)"],
  ["192.0.0.0", 24, "ipv4", "IETF protocol assignments (192.0.0.0/24)"],
  ["192.0.2.0", 24, "ipv4", "documentation (192.0.2.0/24)"],
  ["192.168.0.0", 16, "ipv4", "private network (192.168.0.0/16)"],
  ["198.18.0.0", 15, "ipv4", "benchmarking (198.18.0.0/15)"],
  ["198.51.100.0", 24, "ipv4", "documentation (198.51.100.0/24)"],
  ["203.0.113.0", 24, "ipv4", "documentation (203.0.113.0/24)"],
  ["224.0.0.0", 4, "ipv4", "multicast (224.0.0.0/4)"],
  ["240.0.0.0", 4, "ipv4", "reserved (240.0.0.0/4, broadcast)"],
  ["::", 128, "ipv6", "unspecified (::)"],
  ["::1", 128, "ipv6", "loopback (::1)"],
  // Embedded IPv4 forms canonicalAddress does not turn back into IPv4 (deprecated IPv4-compatible
  // ::a.b.c.d written in hex, SIIT's ::ffff:0:a.b.c.d): nothing public is reached that way.
  ["::", 96, "ipv6", "IPv4-compatible (::/96, deprecated)"],
  ["::ffff:0:0:0", 96, "ipv6", "IPv4-translated (::ffff:0:0:0/96)"],
  ["64:ff9b::", 96, "ipv6", "NAT64 (64:ff9b::/96)"],
  ["64:ff9b:1::", 48, "ipv6", "local NAT64 (64:ff9b:1::/48)"],
  ["100::", 64, "ipv6", "discard (100::/64)"],
  ["2001::", 32, "ipv6", "Teredo (2001::/32)"],
  ["2001:db8::", 32, "ipv6", "documentation (2001:db8::/32)"],
  ["2002::", 16, "ipv6", "6to4 (2002::/16)"],
  ["fc00::", 7, "ipv6", "unique local (fc00::/7; AWS metadata fd00:ec2::254)"],
  ["fe80::", 10, "ipv6", "link-local (fe80::/10)"],
  ["fec0::", 10, "ipv6", "site-local (fec0::/10)"],
  ["ff00::", 8, "ipv6", "multicast (ff00::/8)"],
];

const LISTS = INTERNAL_RANGES.map(([address, prefix, family, reason]) => {
  const list = new BlockList();
  list.addSubnet(address, prefix, family);
  return { list, family, reason };
});

/** Lower-case, no IPv6 brackets or zone, IPv4-mapped / -compatible IPv6 as plain IPv4. */
export function canonicalAddress(address: string): string {
  let a = address.trim().toLowerCase();
  if (a.startsWith("[") && a.endsWith("]")) a = a.slice(1, -1);
  a = a.replace(/%.*$/, "");
  // The WHATWG URL parser writes IPv6 in its one canonical form (0:0:0:0:0:ffff:7f00:1 and
  // ::FFFF:127.0.0.1 both become ::ffff:7f00:1), so every spelling meets the same checks below.
  if (isIP(a) === 6) a = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const dotted = /^::(?:ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) return dotted[1]!;
  if (isIP(a) === 6) {
    // ::ffff:7f00:1 is 127.0.0.1 written in hex.
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(a);
    if (mapped) {
      const hi = parseInt(mapped[1]!, 16);
      const lo = parseInt(mapped[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
  }
  return a;
}

let ownCache: { at: number; addresses: Set<string> } | undefined;
function ownAddresses(): Set<string> {
  // Interfaces change rarely; a second's staleness is harmless next to a DNS answer's TTL.
  const now = Date.now();
  if (ownCache && now - ownCache.at < 1000) return ownCache.addresses;
  const addresses = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) addresses.add(canonicalAddress(i.address));
  ownCache = { at: now, addresses };
  return addresses;
}

/**
 * Why this IP address is internal (a reason for an error message), or null for a public address.
 * Not an IP literal: null (callers resolve names first and check every address they connect to).
 */
export function internalAddressReason(address: string): string | null {
  const a = canonicalAddress(address);
  const v = isIP(a);
  if (v === 0) return null;
  const family = v === 4 ? "ipv4" : "ipv6";
  // An IPv6 address is checked against the IPv4 ranges too: BlockList matches an IPv4-mapped
  // address against them.
  for (const r of LISTS) if ((r.family === family || family === "ipv6") && r.list.check(a, family)) return r.reason;
  if (ownAddresses().has(a)) return "this host's own address";
  return null;
}
