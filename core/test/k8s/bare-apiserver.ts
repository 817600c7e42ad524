// A real API server without agent-sandbox, for the "not installed" errors: a second
// kube-apiserver process with the test control plane's own command line (same binary, etcd,
// certificates and flags) but another port and its own etcd key prefix, so it serves none of the
// CRDs the shared control plane has, and installing or deleting CRDs on it touches no other test.
// The cheapest real way found: no second etcd, controller-manager or controller; ~7 s to start and
// ~270 MB here. stop() kills it and deletes its keys from etcd, its kubeconfig and its log.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { freePort } from "@keel/cli/embedded-postgres";
import { kubeconfigPath, kubectl, waitFor, type RunOptions } from "@keel/controlplane/harness";
import { repoRoot } from "./helpers.ts";
import { kubeconfigWithServer } from "./proxy.ts";

export type BareApiServer = {
  url: string;
  /** Admin kubeconfig (the control plane's client certificate) pointing at this server. */
  kubeconfig: string;
  kubectl: (args: string[], opts?: RunOptions) => ReturnType<typeof kubectl>;
  stop: () => Promise<void>;
};

export async function startBareApiServer(): Promise<BareApiServer> {
  const stateDir = path.dirname(kubeconfigPath());
  const cmd = readFileSync(path.join(stateDir, "pids/kube-apiserver.cmd"), "utf8").split("\n")[0]!.split(" ");
  const flag = (name: string) => {
    const i = cmd.indexOf(name);
    if (i < 0) throw new Error(`kube-apiserver.cmd has no ${name}: ${cmd.join(" ")}`);
    return i + 1;
  };
  const port = await freePort();
  const prefix = `/keel-test-bare-${randomBytes(4).toString("hex")}`;
  cmd[flag("--secure-port")] = String(port);
  cmd[flag("--etcd-prefix")] = prefix;
  const etcd = cmd[flag("--etcd-servers")]!.split(",")[0]!;
  const url = `https://127.0.0.1:${port}`;
  const dir = path.join(repoRoot, ".tmp");
  mkdirSync(dir, { recursive: true });
  const log = path.join(dir, `bare-apiserver-${port}.log`);
  const fd = openSync(log, "a");
  const child: ChildProcess = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  let exited = false;
  child.on("exit", () => (exited = true));
  const kubeconfig = kubeconfigWithServer(kubeconfigPath(), url, path.join(dir, `kubeconfig-bare-${port}`));
  const kc = (args: string[], opts?: RunOptions) => kubectl(["--server", url, ...args], opts);
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      await waitFor(() => exited, { timeoutMs: 30_000, what: "the bare kube-apiserver to exit" }).catch(() => child.kill("SIGKILL"));
    }
    // etcd's JSON gateway: delete every key under the prefix ('/' + 1 = '0').
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    await fetch(`${etcd}/v3/kv/deleterange`, { method: "POST", body: JSON.stringify({ key: b64(`${prefix}/`), range_end: b64(`${prefix}0`) }) });
    rmSync(kubeconfig, { force: true });
    rmSync(log, { force: true });
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`the bare kube-apiserver exited; see ${log}`);
        return (await kc(["get", "--raw", "/readyz"], { allowFailure: true })).stdout.trim() === "ok";
      },
      { timeoutMs: 90_000, intervalMs: 300, what: "the bare kube-apiserver to be ready" },
    );
  } catch (err) {
    const output = readFileSync(log, "utf8").split("\n").slice(-30).join("\n");
    await stop();
    throw new Error(`${(err as Error).message}\n--- last lines of its log ---\n${output}`);
  }
  return { url, kubeconfig, kubectl: kc, stop };
}
