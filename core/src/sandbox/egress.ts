// The egress allow-list of a sandbox policy, parsed once into rules the local egress proxy
// (sandbox/src/egress-proxy.ts) matches. One grammar, close to the Kubernetes driver's so one
// policy means the same on both where both can express it:
//
//   api.example.com          that name, any port          *.example.com      any subdomain (not example.com itself)
//   api.example.com:443      that name, port 443           *.example.com:443
//   203.0.113.7              that address                  203.0.113.0/24     a range (matched against the resolved address)
//   203.0.113.0/24:443       range + port                  [2001:db8::/32]:443, 2001:db8::1
//
// Names are compared lower-case without a trailing dot. The proxy resolves names itself. No team
// rule, name or address (not even 0.0.0.0/0), reaches an internal address (loopback, link-local
// and cloud metadata, private, CGNAT, ULA, NAT64, this host's own: sandbox/src/internal-addresses.ts)
// unless the operator opened that range (LocalDriverOptions.egressInternalAllow).
import { isIP } from "node:net";
import type { EgressRule } from "@keel/sandbox/egress-rules";

export type { EgressRule };

const LABEL = "[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?";
const NAME = new RegExp(`^(\\*\\.)?(${LABEL}(?:\\.${LABEL})*)\\.?$`);

/** One allow-list entry as a rule, or an Error saying what is wrong with it. */
export function parseEgressEntry(entry: string): EgressRule | Error {
  const bad = (why: string) => new Error(`egress allow-list entry "${entry}" ${why}`);
  const s = entry.trim();
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return bad(`is a URL; give the host name only (e.g. ${s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split(/[/?#]/)[0]})`);
  let host = s;
  let port: number | undefined;
  // [v6 or v6/len]:port | v4[/len]:port | name:port | bare v6[/len]
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = Number(bracket[2]);
  } else if ((s.match(/:/g) ?? []).length === 1) {
    const i = s.lastIndexOf(":");
    host = s.slice(0, i);
    if (!/^\d+$/.test(s.slice(i + 1))) return bad("has a port that is not a number");
    port = Number(s.slice(i + 1));
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65_535)) return bad("has a port outside 1-65535");
  const cidr = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(host);
  const family = cidr ? isIP(cidr[1]!) : 0;
  if (cidr && family) {
    const max = family === 4 ? 32 : 128;
    const prefix = cidr[2] === undefined ? max : Number(cidr[2]);
    if (prefix > max) return bad(`has a prefix length over ${max}`);
    return { kind: "cidr", address: cidr[1]!.toLowerCase(), prefix, family: family === 4 ? "ipv4" : "ipv6", ...(port ? { port } : {}) };
  }
  if (bracket) return bad("has brackets but no IPv6 address in them");
  const name = NAME.exec(host.toLowerCase());
  if (!name || host.length > 253) return bad("is not a host name, *.suffix, IP address or CIDR (optionally with :port)");
  if (/^[0-9.]+$/.test(name[2]!)) return bad("is not a valid IPv4 address");
  return name[1] ? { kind: "suffix", suffix: name[2]!, ...(port ? { port } : {}) } : { kind: "host", host: name[2]!, ...(port ? { port } : {}) };
}

/** Every entry as a rule; throws one Error naming the first bad entry. */
export function parseEgressAllowList(allow: readonly string[]): EgressRule[] {
  return allow.map((entry) => {
    const r = parseEgressEntry(entry);
    if (r instanceof Error) throw r;
    return r;
  });
}
