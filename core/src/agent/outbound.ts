// Which hosts a worker may call for a team's agent: its model provider (provider.baseUrl) and its
// MCP servers. Teams set those URLs, and the worker fetches them from its own network, so an
// operator running many teams lists the allowed hosts (KEEL_OUTBOUND_HOSTS) in the sandbox egress
// grammar (core/src/sandbox/egress.ts: names, *.suffix, IP/CIDR, optional :port). Matching is on
// the URL's host as written, without a DNS lookup: a name is allowed because the operator named
// it. Unset means any host, as before. The workers' own provider (KEEL_OPENAI_BASE_URL) is always
// allowed.
import { isIP } from "node:net";
import { EgressMatcher, normalizeHost } from "../../../sandbox/src/egress-rules.js";
import { parseEgressAllowList } from "../sandbox/egress.js";

export interface OutboundPolicy {
  /** null when the worker may call this URL, else why not (for the session's error event). */
  refusal(url: string): string | null;
}

export const ANY_HOST: OutboundPolicy = { refusal: () => null };

/** `allow` undefined: any host. Throws (naming the entry) on an entry the grammar refuses. */
export function outboundPolicy(allow: readonly string[] | undefined, alwaysAllowed: readonly (string | undefined)[] = []): OutboundPolicy {
  if (allow === undefined) return ANY_HOST;
  const matcher = new EgressMatcher(parseEgressAllowList(allow));
  const trusted = new Set(alwaysAllowed.flatMap((u) => (u ? [origin(u)] : [])));
  return {
    refusal(url) {
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        return `${JSON.stringify(url)} is not a URL`;
      }
      if (trusted.has(origin(url))) return null;
      const host = normalizeHost(u.hostname);
      const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
      const ok = isIP(host) ? matcher.addressAllowed(host, port) : matcher.nameAllowed(host, port);
      return ok ? null : `${host}:${port} is not among the hosts this Keel's workers may call (KEEL_OUTBOUND_HOSTS: ${matcher.describe()})`;
    },
  };
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
