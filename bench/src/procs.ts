// Worker processes for the bench: worker-proc.ts is bundled once with esbuild, then forked with
// `node` (as core/test/processes.ts does), and talks to us over IPC.
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { bundleForNode } from "@keel/core/testing/bundle";
import type { Sys } from "./config.js";

const source = path.join(import.meta.dirname, "worker-proc.ts");
const bundle = path.resolve(import.meta.dirname, "../.tmp/worker-proc.mjs");
let built: Promise<unknown> | null = null;

export type Msg = { t: string; id?: string; at?: number; pid?: number };
export type Proc = { child: ChildProcess; pid: number; exited: Promise<void>; send(m: object): void };

const live = new Set<ChildProcess>();
const listeners = new Set<(m: Msg, p: Proc) => void>();

/** Subscribes to messages from every worker process; returns the unsubscribe function. */
export function onMessage(fn: (m: Msg, p: Proc) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export async function spawnWorker(sys: Sys, url: string, mode: "throughput" | "takeover", extraEnv: Record<string, string> = {}): Promise<Proc> {
  built ??= bundleForNode(source, bundle);
  await built;
  const child = fork(bundle, [], {
    env: { ...process.env, BENCH_SYSTEM: sys, BENCH_DB_URL: url, BENCH_MODE: mode, ...extraEnv },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => (live.delete(child), resolve())));
  const proc: Proc = { child, pid: child.pid!, exited, send: (m) => child.connected && child.send(m) };
  child.on("message", (m: Msg) => {
    for (const l of listeners) l(m, proc);
  });
  await new Promise<void>((resolve, reject) => {
    const onMsg = (m: Msg) => m.t === "ready" && (child.off("message", onMsg), resolve());
    child.on("message", onMsg);
    child.once("exit", (code, signal) => reject(new Error(`${sys} worker exited before ready: ${code ?? signal}`)));
  });
  return proc;
}

/** Sends {t:"go"} and resolves once the worker reports it started. */
export function go(p: Proc): Promise<void> {
  return new Promise((resolve) => {
    const off = onMessage((m, from) => from === p && m.t === "started" && (off(), resolve()));
    p.send({ t: "go" });
  });
}

export async function killAll(procs: Iterable<Proc>): Promise<void> {
  const list = [...procs];
  for (const p of list) p.child.kill("SIGKILL");
  await Promise.all(list.map((p) => p.exited));
}

/** Leaves no worker process behind (called on exit, including failures). */
export function killLeftovers(): void {
  for (const c of live) c.kill("SIGKILL");
}
