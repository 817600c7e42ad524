// Signed egress grants: how the shared egress proxy of a Kubernetes installation (one Deployment
// serving every team, k8s/base/egress-proxy.yaml) knows which allow-list a connection may use.
// The worker signs a template's rules (and the internal ranges the operator opened) with a key
// derived from KEEL_SECRETS_KEY; the template's pods present the grant as their proxy password
// (HTTPS_PROXY=http://keel:<grant>@proxy:3128, from a Secret); the proxy checks the signature and
// applies exactly those rules, with the same matcher the local driver's proxy uses. Code in the
// sandbox can read its own grant and gains nothing by it: it opens what its policy already allows,
// and any change to the rules breaks the signature. Node built-ins only (it runs in the proxy).
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import type { EgressRule } from "./egress-rules.js";

/** The variables that point a sandbox's tools at its egress proxy (both drivers), and what stays direct. */
export const PROXY_URL_VARS = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] as const;
export const NO_PROXY = "localhost,127.0.0.1,::1";

export type EgressGrant = { team: string; template: string; rules: EgressRule[]; internal: EgressRule[] };

/** The grant key from KEEL_SECRETS_KEY's 32 bytes (a key of its own: HKDF, another label than the runtime tokens'). */
export function egressGrantKey(secret: Buffer): Buffer {
  if (secret.length < 32) throw new Error("the egress grant key needs 32 bytes (KEEL_SECRETS_KEY)");
  return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "keel kubernetes egress grants", 32));
}

const mac = (key: Buffer, body: string) => createHmac("sha256", key).update(body).digest();

/** `<payload>.<signature>`, both base64url (fits a URL's password without escaping). */
export function signEgressGrant(key: Buffer, grant: EgressGrant): string {
  const body = Buffer.from(JSON.stringify(grant), "utf8").toString("base64url");
  return `${body}.${mac(key, body).toString("base64url")}`;
}

/** The grant if `token` is one this key signed, else null. */
export function verifyEgressGrant(key: Buffer, token: string): EgressGrant | null {
  const dot = token.indexOf(".");
  if (dot <= 0 || token.length > 64 * 1024) return null;
  const body = token.slice(0, dot);
  const sig = Buffer.from(token.slice(dot + 1), "base64url");
  const want = mac(key, body);
  if (sig.length !== want.length || !timingSafeEqual(sig, want)) return null;
  try {
    const g = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as EgressGrant;
    return Array.isArray(g.rules) && Array.isArray(g.internal) ? g : null;
  } catch {
    return null;
  }
}
