// What a cloud kubeconfig needs from the app, against the real control plane: the login shell's
// environment read at start (PATH, KUBECONFIG, values with newlines; a hanging rc file bounded),
// an exec credential plugin that cannot run or fails reported as itself (not "unauthorized"), its
// token reused across calls (one KubeConfig per context), and the kubeconfig re-read only when its
// files change, with `kube:contexts:changed` pushed then.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { kubectl, startControlPlane, waitFor } from "./control-plane.ts";
import { applyLoginShellEnv } from "../src/main/shell-env.ts";
import { KubeconfigSource } from "../src/main/kubeconfig-source.ts";
import { createMainServices } from "../src/main/ipc.ts";
import { ipcClient } from "./helpers.ts";
import type { EventName } from "../src/shared/contract.ts";

let dir: string;
let caPath: string;
const server = () => `https://127.0.0.1:${process.env.KEEL_CP_API_PORT}`;

beforeAll(async () => {
  await startControlPlane();
  dir = mkdtempSync(path.join(os.tmpdir(), "keel-desktop-creds-"));
  caPath = path.join(process.env.KEEL_CP_STATE_DIR!, "pki", "ca.crt");
}, 600_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const execKubeconfig = (context: string, command: string) => `apiVersion: v1
kind: Config
clusters:
- name: cp
  cluster:
    server: ${server()}
    certificate-authority: ${caPath}
users:
- name: ${context}-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${command}
      interactiveMode: Never
contexts:
- name: ${context}
  context:
    cluster: cp
    user: ${context}-user
current-context: ${context}
`;

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/bash\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

test("the login shell's environment: PATH and KUBECONFIG from the profile, a value with a newline, the shell's own variables left out", async () => {
  const home = mkdtempSync(path.join(dir, "home-"));
  writeFileSync(
    path.join(home, ".bash_profile"),
    `echo "Welcome! (a banner printed by the profile)"\nexport PATH="/opt/keel-test-bin:$PATH"\nexport KUBECONFIG="${home}/eks.yaml"\nexport MULTI=$'line one\\nline two'\n`,
  );
  const target: Record<string, string | undefined> = { HOME: home, PATH: "/usr/bin:/bin", SHELL: "/bin/bash" };
  const r = await applyLoginShellEnv(target, { platform: "linux" });
  expect(r).toMatchObject({ ok: true, shell: "/bin/bash" });
  // /etc/profile sets the system PATH; the profile put its directory first.
  expect(target.PATH).toMatch(/^\/opt\/keel-test-bin:.*\/usr\/bin/);
  expect(target.KUBECONFIG).toBe(`${home}/eks.yaml`);
  expect(target.MULTI).toBe("line one\nline two");
  expect(target.SHLVL).toBeUndefined();
  expect(target.KEEL_RESOLVING_SHELL_ENV).toBeUndefined();
});

test("a profile that never finishes is cut off at the deadline and changes nothing; Windows is not asked", async () => {
  const home = mkdtempSync(path.join(dir, "home-"));
  writeFileSync(path.join(home, ".bash_profile"), `sleep 600\nexport PATH=/changed\n`);
  const target: Record<string, string | undefined> = { HOME: home, PATH: "/usr/bin:/bin", SHELL: "/bin/bash" };
  const r = await applyLoginShellEnv(target, { platform: "linux", timeoutMs: 1_000 });
  expect(r).toEqual({
    ok: false,
    shell: "/bin/bash",
    error: "/bin/bash -ilc did not print its environment within 1000 ms (does a shell startup file wait for input?)",
  });
  expect(target.PATH).toBe("/usr/bin:/bin");
  expect(await applyLoginShellEnv(target, { platform: "win32" })).toEqual({ ok: false, shell: null, error: "not resolved on win32" });
  const missing = await applyLoginShellEnv({ SHELL: "/nonexistent/zsh" }, { platform: "darwin" });
  expect(missing).toMatchObject({ ok: false, shell: "/nonexistent/zsh", error: expect.stringContaining("could not run /nonexistent/zsh") });
});

test("an exec plugin that is not installed, or fails, is reported as itself with its words, not as unauthorized", async () => {
  const missing = path.join(dir, "missing.yaml");
  writeFileSync(missing, execKubeconfig("eks", "keel-test-no-such-plugin"));
  expect(await ipcClient(missing)("sandboxes:list", { context: "eks" })).toEqual({
    ok: false,
    error: {
      name: "KubeError",
      code: "credential_plugin_failed",
      message: expect.stringMatching(
        /^could not run keel-test-no-such-plugin for user "eks-user" of context "eks": it is not on the app's PATH \(spawn keel-test-no-such-plugin ENOENT\)/,
      ),
    },
  });
  const failing = path.join(dir, "failing.yaml");
  writeFileSync(failing, execKubeconfig("gke", script("expired-plugin", `echo "Error: the SSO session has expired; run aws sso login" >&2; exit 1`)));
  const status = (await ipcClient(failing)("kube:context:status", { context: "gke" })) as any;
  expect(status.value.connection).toEqual({
    ok: false,
    code: "credential_plugin_failed",
    message: expect.stringContaining("Error: the SSO session has expired; run aws sso login. Log in again with it"),
  });
});

test("one KubeConfig per context: the exec plugin runs once for many calls; the kubeconfig is re-read only when a file changes, with kube:contexts:changed", async () => {
  await kubectl(["create", "serviceaccount", "desktop-exec", "-n", "default"], { allowFailure: true });
  const token = (await kubectl(["create", "token", "desktop-exec", "-n", "default", "--duration=1h"])).stdout.trim();
  const runs = path.join(dir, "plugin-runs");
  const plugin = script(
    "token-plugin",
    `echo run >> ${runs}\nprintf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' '${token}'`,
  );
  const file = path.join(dir, "cloud.yaml");
  writeFileSync(file, execKubeconfig("cloud", plugin));
  const events: { name: EventName; payload: unknown }[] = [];
  const emit = (name: EventName, payload: unknown) => events.push({ name, payload });
  const kube = new KubeconfigSource({ env: { KUBECONFIG: file }, emit });
  kube.watch();
  const services = createMainServices({ emit, kube });
  const call = ipcClient(undefined, services);
  try {
    for (let i = 0; i < 3; i++)
      expect(await call("kube:context:status", { context: "cloud" })).toMatchObject({ ok: true, value: { connection: { ok: true } } });
    expect(await call("sandboxes:list", { context: "cloud" })).toMatchObject({ ok: false, error: { code: "forbidden" } }); // authenticated, no RBAC
    expect(readFileSync(runs, "utf8")).toBe("run\n");
    expect(kube.reads).toBe(1);

    // kubectl config rename-context style: the file replaced by a new one.
    writeFileSync(`${file}.new`, execKubeconfig("cloud-renamed", plugin));
    renameSync(`${file}.new`, file);
    const changed = await waitFor(() => events.find((e) => e.name === "kube:contexts:changed"), { what: "kube:contexts:changed" });
    expect(changed.payload).toEqual({ current: "cloud-renamed" });
    expect(await call("kube:contexts:list")).toMatchObject({ ok: true, value: { current: "cloud-renamed", contexts: [{ name: "cloud-renamed" }] } });
    expect(kube.reads).toBe(2);
    expect(existsSync(`${file}.new`)).toBe(false);
  } finally {
    await services.dispose();
  }
});
