// After the launcher brings Keel up, the operator gets a working connection without pasting
// anything: the admin login kind/up.sh generated (the Secret keel/keel-admin, read with the kind
// context's credentials), a login to Keel's API with it, an API key created for this app through
// the typed client, and the sessions connection opened with that key (the key stays in main).
import os from "node:os";
import type { KubeConfig } from "@kubernetes/client-node";
import { api } from "@keel/core/contract/api";
import { ApiClient } from "@keel/core/contract/api-client";
import type { KeelConnection } from "../../shared/contract.ts";
import { expectStatus, KubeError, kubeRequest, KEEL_NAMESPACE } from "../kube.ts";

export const ADMIN_SECRET = "keel-admin";

/** The generated admin login, from the Secret keel/keel-admin (KEEL_ADMIN_EMAIL, KEEL_ADMIN_PASSWORD). */
export async function readAdminLogin(kc: KubeConfig): Promise<{ email: string; password: string }> {
  const res = await kubeRequest<{ data?: Record<string, string> }>(kc, "GET", `/api/v1/namespaces/${KEEL_NAMESPACE}/secrets/${ADMIN_SECRET}`);
  const secret = expectStatus(kc, res, `read the Secret ${KEEL_NAMESPACE}/${ADMIN_SECRET} (the admin login kind/up.sh generated)`);
  const field = (k: string) => (secret.data?.[k] ? Buffer.from(secret.data[k], "base64").toString("utf8") : "");
  const email = field("KEEL_ADMIN_EMAIL");
  const password = field("KEEL_ADMIN_PASSWORD");
  if (!email || !password) {
    throw new KubeError(
      "keel_missing",
      `the Secret ${KEEL_NAMESPACE}/${ADMIN_SECRET} has no KEEL_ADMIN_EMAIL and KEEL_ADMIN_PASSWORD: run the launcher's apply step again`,
    );
  }
  return { email, password };
}

/** Logs in with the admin login and creates an admin API key named for this machine; answers the key. */
export async function createOperatorKey(baseUrl: string, login: { email: string; password: string }, timeoutMs = 15_000): Promise<string> {
  const signal = () => AbortSignal.timeout(timeoutMs);
  const res = await new ApiClient({ baseUrl }).send(api.auth.login, { body: login, signal: signal() });
  const cookie = res.headers.get("set-cookie")?.split(";")[0];
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  if (!cookie) throw new Error(`Keel at ${baseUrl} answered the login without a session cookie`);
  const browser = new ApiClient({ baseUrl, credentials: { cookie, csrfToken: () => csrfToken } });
  const name = `keel-desktop ${os.hostname()}`.slice(0, 100);
  const { key } = await browser.call(api.apiKeys.create, { body: { name, role: "admin" }, signal: signal() });
  // The login itself is not needed any more.
  await browser.call(api.auth.logout, { signal: signal() }).catch(() => undefined);
  return key;
}

/** Everything above, ending in an open sessions connection. */
export async function handOver(
  kc: KubeConfig,
  baseUrl: string,
  connect: (input: { baseUrl: string; apiKey: string }) => Promise<KeelConnection>,
): Promise<KeelConnection> {
  const apiKey = await createOperatorKey(baseUrl, await readAdminLogin(kc));
  return connect({ baseUrl, apiKey });
}
