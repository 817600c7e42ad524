// Which hosts a worker may call for a team's agent: its model provider (provider.baseUrl) and its
// MCP servers. Teams set those URLs and the worker fetches them from its own network, so this is
// where server-side request forgery is stopped:
// - internal addresses (loopback, link-local/cloud metadata, private, CGNAT, ULA, NAT64, this host's
//   own; sandbox/src/internal-addresses.ts) are refused unless the operator lists them
//   (`internal`, KEEL_OUTBOUND_INTERNAL_HOSTS; an IP/CIDR entry of `allow` also opens the
//   addresses it names);
// - `allow` (KEEL_OUTBOUND_HOSTS, the sandbox egress grammar) limits every other host; unset: any
//   public host.
// The check is made on the address actually connected to: `fetch` connects through an undici
// Agent whose connector resolves the name itself and refuses internal addresses, so a DNS answer
// that changes between a check and the connection (rebinding) cannot reach one. The workers' own
// provider (KEEL_OPENAI_BASE_URL) is the operator's and always allowed.
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP, type LookupFunction } from "node:net";
import { Agent, buildConnector, fetch as undiciFetch } from "undici";
import { EgressMatcher, normalizeHost } from "@keel/sandbox/egress-rules";
import { internalAddressReason } from "@keel/sandbox/internal-addresses";
import { parseEgressAllowList } from "../sandbox/egress.js";

/** A connection the policy refused (found in an error's `cause` chain by callers). */
export class OutboundRefusedError extends Error {
  readonly code = "outbound_not_allowed";
  constructor(message: string) {
    super(message);
    this.name = "OutboundRefusedError";
  }
}

export interface OutboundPolicy {
  /** null when the URL may be called as written (scheme, literal address, KEEL_OUTBOUND_HOSTS), else why not. No DNS. */
  refusal(url: string): string | null;
  /** `refusal`, then the name resolved and every address checked: null when at least one may be used. */
  check(url: string): Promise<string | null>;
  /** fetch whose connections go only to addresses this policy allows (pinned at connect time). */
  readonly fetch: typeof globalThis.fetch;
}

export type OutboundOptions = {
  /** KEEL_OUTBOUND_HOSTS: hosts a team's URL may name; undefined = any public host. */
  allow?: readonly string[];
  /** KEEL_OUTBOUND_INTERNAL_HOSTS: internal names (exact or *.suffix, as written in the URL) or addresses (IP/CIDR) that may be called. */
  internal?: readonly string[];
  /** Origins always allowed, without checks (the workers' own KEEL_OPENAI_BASE_URL). */
  trusted?: readonly (string | undefined)[];
};

/** Any host, internal ones included: only for tests that want no policy at all. */
export const ANY_HOST: OutboundPolicy = { refusal: () => null, check: async () => null, fetch: globalThis.fetch };

/** Throws (naming the entry) on an entry the egress grammar refuses. */
export function outboundPolicy(o: OutboundOptions = {}): OutboundPolicy {
  const allow = o.allow === undefined ? null : new EgressMatcher(parseEgressAllowList(o.allow));
  const internal = new EgressMatcher(parseEgressAllowList(o.internal ?? []));
  const trusted = new Set((o.trusted ?? []).flatMap((u) => (u ? [origin(u)] : [])));

  /** Why the worker may not connect to `address` for a URL naming `host`, or null. */
  function addressRefusal(host: string, address: string, port: number): string | null {
    const a = normalizeHost(address);
    const byName = isIP(host) === 0;
    if (allow && !(byName ? allow.nameAllowed(host, port) : allow.addressAllowed(a, port))) {
      return `${host}:${port} is not among the hosts this Keel's workers may call (KEEL_OUTBOUND_HOSTS: ${allow.describe()})`;
    }
    const reason = internalAddressReason(a);
    if (!reason) return null;
    if (internal.addressAllowed(a, port) || (byName && internal.nameAllowed(host, port)) || allow?.addressAllowed(a, port)) return null;
    const what = byName ? `${host} resolves to ${a}, ` : `${a} is `;
    return `${what}an internal address (${reason}); workers call internal addresses for a team only when the operator lists them (KEEL_OUTBOUND_INTERNAL_HOSTS)`;
  }

  function parse(url: string): { u: URL; host: string; port: number } | string {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return `${JSON.stringify(url)} is not a URL`;
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") return `${u.protocol} URLs are not allowed (http: or https: only)`;
    return { u, host: normalizeHost(u.hostname), port: Number(u.port || (u.protocol === "https:" ? 443 : 80)) };
  }

  function refusal(url: string): string | null {
    const p = parse(url);
    if (typeof p === "string") return p;
    if (trusted.has(p.u.origin)) return null;
    if (isIP(p.host)) return addressRefusal(p.host, p.host, p.port);
    if (allow && !allow.nameAllowed(p.host, p.port))
      return `${p.host}:${p.port} is not among the hosts this Keel's workers may call (KEEL_OUTBOUND_HOSTS: ${allow.describe()})`;
    return null;
  }

  async function check(url: string): Promise<string | null> {
    const first = refusal(url);
    if (first) return first;
    const p = parse(url) as { u: URL; host: string; port: number };
    if (trusted.has(p.u.origin) || isIP(p.host)) return null;
    let addresses: LookupAddress[];
    try {
      addresses = await new Promise((resolve, reject) => dnsLookup(p.host, { all: true }, (err, a) => (err ? reject(err) : resolve(a))));
    } catch (err) {
      return `${p.host} cannot be resolved (${(err as NodeJS.ErrnoException).code ?? "lookup failed"})`;
    }
    const refusals = addresses.map((a) => addressRefusal(p.host, a.address, p.port));
    return refusals.some((r) => r === null) ? null : (refusals[0] ?? `${p.host} has no addresses`);
  }

  // The connection's own lookup: only allowed addresses are handed to net.connect, so the socket
  // can only reach what was checked (a second DNS answer never gets a say).
  const connectorFor = (host: string, port: number) => {
    const lookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, "", 4);
        const ok = addresses.filter((a) => addressRefusal(host, a.address, port) === null);
        if (ok.length === 0)
          return callback(new OutboundRefusedError(addressRefusal(host, addresses[0]?.address ?? "", port) ?? `${host} has no addresses`), "", 4);
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, ok);
        callback(null, ok[0]!.address, ok[0]!.family);
      });
    };
    return lookup;
  };
  const base = buildConnector({});
  const agent = new Agent({
    connect: (opts, cb) => {
      const host = normalizeHost(opts.hostname);
      const port = Number(opts.port || (opts.protocol === "https:" ? 443 : 80));
      // net.connect skips `lookup` for an address literal (a redirect may name one): check it here.
      if (isIP(host)) {
        const why = addressRefusal(host, host, port);
        return why ? cb(new OutboundRefusedError(why), null) : base(opts, cb);
      }
      buildConnector({ lookup: connectorFor(host, port) } as buildConnector.BuildOptions)(opts, cb);
    },
  });
  const fetch = ((input: Parameters<typeof undiciFetch>[0], init?: Parameters<typeof undiciFetch>[1]) =>
    undiciFetch(input, { ...init, dispatcher: agent })) as unknown as typeof globalThis.fetch;
  return { refusal, check, fetch };
}

/** Text a remote server chose (provider and MCP errors) as events and logs keep it: enough to diagnose, never a whole (reflected) body. */
export const MAX_REMOTE_TEXT = 200;

export function clipRemoteText(text: string): string {
  return text.length > MAX_REMOTE_TEXT ? `${text.slice(0, MAX_REMOTE_TEXT)}… (${text.length - MAX_REMOTE_TEXT} more characters not shown)` : text;
}

/** The policy's refusal somewhere in an error's cause chain (fetch wraps it as "fetch failed"). */
export function outboundRefusalIn(err: unknown): OutboundRefusedError | null {
  let e: unknown = err;
  for (let depth = 0; e && depth < 6; depth++) {
    if (e instanceof OutboundRefusedError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
