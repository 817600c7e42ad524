// The kubeconfig as the app holds it: read once and kept while its files are unchanged (their
// paths and mtimes), with one KubeConfig per context kept with it. One KubeConfig per context
// means one client-node ExecAuth per context, whose token cache then works: an EKS context runs
// `aws eks get-token` once per token lifetime, not on every poll. The files' directories are
// watched (editors and `kubectl config` replace the file, which a watch on the file itself would
// lose), and a change that alters the kubeconfig is pushed as `kube:contexts:changed`.
import { statSync, watch, type FSWatcher } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Emit } from "../shared/contract.ts";
import { kubeConfigFor, loadKubeconfig, type Kubeconfig } from "./kube.ts";

export type KubeconfigSourceOptions = {
  /** Read at each load (the login shell's KUBECONFIG lands in process.env at start). Default: process.env. */
  env?: { KUBECONFIG?: string | undefined };
  home?: string;
  emit?: Emit;
};

export class KubeconfigSource {
  private cached: { key: string; config: Kubeconfig; contexts: Map<string, KubeConfig> } | undefined;
  private watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  /** How often the files were parsed (tests read it). */
  reads = 0;

  constructor(private readonly o: KubeconfigSourceOptions = {}) {}

  /** The files kubectl would read, in order, whether they exist or not. */
  candidates(): string[] {
    const env = this.o.env ?? process.env;
    return env.KUBECONFIG ? env.KUBECONFIG.split(path.delimiter).filter(Boolean) : [path.join(this.o.home ?? os.homedir(), ".kube", "config")];
  }

  private key(): string {
    return this.candidates()
      .map((f) => {
        try {
          const s = statSync(f);
          return `${f}@${s.mtimeMs}:${s.size}`;
        } catch {
          return `${f}@-`;
        }
      })
      .join("|");
  }

  /** The kubeconfig, re-read only when a file changed (appeared, went, or has a new mtime or size). */
  load(): Kubeconfig {
    const key = this.key();
    if (this.cached?.key === key) return this.cached.config;
    const env = { KUBECONFIG: (this.o.env ?? process.env).KUBECONFIG };
    const config = loadKubeconfig({ env, ...(this.o.home ? { home: this.o.home } : {}) });
    this.reads++;
    this.cached = { key, config, contexts: new Map() };
    this.rewatch();
    return config;
  }

  /** One KubeConfig per context while the files are unchanged (kube.ts kubeConfigFor otherwise). */
  forContext(context: string): KubeConfig {
    const config = this.load();
    const contexts = this.cached!.contexts;
    let kc = contexts.get(context);
    if (!kc) contexts.set(context, (kc = kubeConfigFor(config, context)));
    return kc;
  }

  /** Starts watching the files' directories; `kube:contexts:changed` follows each change that alters them. */
  watch(): void {
    this.watching = true;
    this.rewatch();
  }

  close(): void {
    this.watching = false;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  private watching = false;

  private rewatch() {
    if (!this.watching) return;
    const dirs = new Set(this.candidates().map((f) => path.dirname(f)));
    for (const [dir, w] of this.watchers) if (!dirs.has(dir)) (w.close(), this.watchers.delete(dir));
    const names = new Set(this.candidates().map((f) => path.basename(f)));
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, (_type, file) => {
          if (file === null || names.has(String(file))) this.onChange();
        });
        w.on("error", () => (w.close(), this.watchers.delete(dir)));
        this.watchers.set(dir, w);
      } catch {
        /* the directory does not exist (yet): nothing to watch */
      }
    }
  }

  /** Coalesces a burst of events (write + rename) into one check. */
  private onChange() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const before = this.cached?.key;
      let current: string | null = null;
      try {
        current = this.load().kc.getCurrentContext() || null;
      } catch {
        // A half-written or invalid file: the next call reports kubeconfig_invalid; tell the UI to ask.
        this.cached = undefined;
      }
      if (before !== this.cached?.key) this.o.emit?.("kube:contexts:changed", { current });
    }, 100);
  }
}
