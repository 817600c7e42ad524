// Shared by the desktop tests: channels called the way the renderer calls them (through
// registerAll's wrapper; a Map stands in for ipcMain), agent-sandbox fixtures, and the stub tools
// kind/up.sh runs against.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import path from "node:path";
import { loadKubeconfig } from "../src/main/kube.ts";
import { createHandlers, registerAll, type MainServices } from "../src/main/ipc.ts";
import type { Result } from "../src/shared/contract.ts";

export type Call = (channel: string, ...args: unknown[]) => Promise<Result<any>>;

/** Handlers reading `kubeconfig` (as KUBECONFIG; undefined: the default loader), optionally with given services. */
export function ipcClient(kubeconfig: string | undefined, services?: MainServices): Call {
  const listeners = new Map<string, (event: unknown, ...args: unknown[]) => Promise<unknown>>();
  const load = kubeconfig === undefined ? undefined : () => loadKubeconfig({ env: { KUBECONFIG: kubeconfig } });
  registerAll((ch, fn) => listeners.set(ch, fn), createHandlers(load, services));
  return (channel, ...args) => listeners.get(channel)!({}, ...args) as Promise<Result<any>>;
}

/** The value of an ok result; an error result throws with its code and message. */
export async function value<T>(p: Promise<Result<T>>): Promise<T> {
  const r = await p;
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}

/** A SandboxTemplate whose pods kwok makes Ready (no container really runs). */
export function templateYaml(name: string): string {
  return `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxTemplate
metadata:
  name: ${name}
spec:
  podTemplate:
    spec:
      containers:
      - name: agent
        image: registry.invalid/keel/agent:test
`;
}

export function warmPoolYaml(name: string, template: string, replicas: number): string {
  return `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxWarmPool
metadata:
  name: ${name}
spec:
  replicas: ${replicas}
  sandboxTemplateRef:
    name: ${template}
`;
}

/**
 * A bin dir for running the real kind/up.sh against stub tools: the few system utilities up.sh
 * uses (linked from this machine) and test/fixtures/kind-stub.sh as `tools` (records its calls,
 * keeps a fake cluster, fails or hangs where told). One list, so a new utility in up.sh is added
 * once for the launcher test and the renderer test.
 */
export function kindStubBin(bin: string, tools: readonly ("docker" | "kind" | "kubectl")[] = ["docker", "kind", "kubectl"]): void {
  mkdirSync(bin, { recursive: true });
  for (const util of ["bash", "dirname", "grep", "sleep", "rm", "mkdir", "mktemp", "cat"]) {
    symlinkSync(spawnSync("sh", ["-c", `command -v ${util}`], { encoding: "utf8" }).stdout.trim(), path.join(bin, util));
  }
  for (const t of tools) {
    copyFileSync(path.join(import.meta.dirname, "fixtures/kind-stub.sh"), path.join(bin, t));
    chmodSync(path.join(bin, t), 0o755);
  }
}
