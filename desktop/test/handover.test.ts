// The connection handed to the operator after the launcher's run, against a real Keel and the real
// control plane: the admin login read from the Secret keel/keel-admin (as kind/up.sh writes it),
// a login to Keel's API, an API key created for the app, and a sessions connection opened with it;
// nothing pasted. A missing Secret or a wrong password says what is wrong.
import { afterAll, beforeAll, expect, test } from "vitest";
import { ADMIN } from "@keel/server/testing/harness";
import { kubectl, startControlPlane } from "./control-plane.ts";
import { loadKubeconfig, kubeConfigFor } from "../src/main/kube.ts";
import { handOver, readAdminLogin } from "../src/main/launcher/handover.ts";
import { SessionsService } from "../src/main/sessions.ts";
import { startKeel, type Keel } from "./keel.ts";

let keel: Keel;
let kubeconfig: string;
const sessions = new SessionsService({ emit: () => {} });
const kc = () => kubeConfigFor(loadKubeconfig({ env: { KUBECONFIG: kubeconfig } }), "keel-test");
const adminSecret = (email: string, password: string) =>
  kubectl([
    "create",
    "secret",
    "generic",
    "keel-admin",
    "-n",
    "keel",
    `--from-literal=KEEL_ADMIN_EMAIL=${email}`,
    `--from-literal=KEEL_ADMIN_PASSWORD=${password}`,
  ]);

beforeAll(async () => {
  kubeconfig = await startControlPlane();
  keel = await startKeel();
  await kubectl(["delete", "namespace", "keel", "--ignore-not-found", "--wait=true"], { timeoutMs: 120_000 });
  await kubectl(["create", "namespace", "keel"]);
}, 600_000);

afterAll(async () => {
  await sessions.close();
  await keel?.stop();
  await kubectl(["delete", "namespace", "keel", "--wait=false", "--ignore-not-found"]);
});

test("no admin Secret: the handover says where it looked", async () => {
  await expect(readAdminLogin(kc())).rejects.toMatchObject({ code: "not_found", message: expect.stringContaining("read the Secret keel/keel-admin") });
});

test("the generated admin login becomes an API key for the app and an open sessions connection", async () => {
  await adminSecret(ADMIN.email, ADMIN.password);
  const conn = await handOver(kc(), keel.url, (i) => sessions.connect(i));
  expect(conn).toMatchObject({ baseUrl: keel.url, teamId: expect.any(String), role: "admin", actor: expect.any(String) });
  // The connection works, and Keel lists the key by the app's name.
  expect(await sessions.handlers()["sessions:list"]({ connection: conn.id })).toMatchObject({ sessions: expect.any(Array) });
  const keys = (await keel.api("/api/v1/api-keys")).body.apiKeys as { name: string; role: string }[];
  expect(keys.filter((k) => k.name.startsWith("keel-desktop "))).toEqual([expect.objectContaining({ role: "admin" })]);

  // A Secret whose password Keel does not accept: Keel's own answer.
  await kubectl(["delete", "secret", "keel-admin", "-n", "keel"]);
  await adminSecret(ADMIN.email, "not the password");
  await expect(handOver(kc(), keel.url, (i) => sessions.connect(i))).rejects.toMatchObject({ status: 401 });
});
