// Which address a request comes from, for login limits: the socket's peer address, or, when that
// peer is a reverse proxy the operator listed, the address that proxy put in X-Forwarded-For.
// X-Forwarded-For is read from the right (each proxy appends the address it saw): hops are taken
// while the current address is a trusted proxy, so a client that prepends its own entries gains
// nothing, and a client talking to us directly cannot choose its address at all.
import { BlockList, isIP } from "node:net";
import { ValidationError } from "../errors.js";

export type TrustedProxies = BlockList;

/** Parses "10.0.0.0/8, 192.168.1.7, fd00::/8" (CIDRs or single addresses). Throws on a bad entry. */
export function parseTrustedProxies(list: string): TrustedProxies {
  const blocks = new BlockList();
  for (const raw of list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [addr, bits, extra] = raw.split("/");
    const family = isIP(addr ?? "");
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!family || extra !== undefined || !/^\d{1,3}$/.test(bits ?? String(max)) || prefix > max) {
      throw new ValidationError(`"${raw}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.168.1.7, fd00::/8)`);
    }
    blocks.addSubnet(addr!, prefix, family === 4 ? "ipv4" : "ipv6");
  }
  return blocks;
}

/** "::ffff:10.1.2.3" (an IPv4 client on a dual-stack socket) is 10.1.2.3; anything else as is. */
function normalize(a: string): string {
  const s = a.trim().replace(/^\[(.*)\]$/, "$1");
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m ? m[1]! : s.toLowerCase();
}

function isTrusted(addr: string, trusted: TrustedProxies): boolean {
  const family = isIP(addr);
  return family !== 0 && trusted.check(addr, family === 4 ? "ipv4" : "ipv6");
}

/**
 * The client's address: `peer` (the socket's remote address) unless it is a trusted proxy, then
 * the nearest X-Forwarded-For hop that is not one. "unknown" only when there is no peer at all.
 */
export function clientAddress(peer: string | null | undefined, forwardedFor: string | null | undefined, trusted: TrustedProxies | null): string {
  if (!peer) return "unknown";
  let addr = normalize(peer);
  if (!trusted || !forwardedFor) return addr;
  const hops = forwardedFor.split(",").map(normalize).filter(Boolean).reverse();
  for (const hop of hops) {
    if (!isTrusted(addr, trusted)) break;
    // A hop that is not an address (a proxy that writes "unknown" or a port) ends the walk at
    // the last proxy we trust: its clients then share its limits, which is the safe side.
    if (!isIP(hop)) break;
    addr = hop;
  }
  return addr;
}
