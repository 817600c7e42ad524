// Live sandboxes view: SandboxClaims, Sandboxes, SandboxTemplates and SandboxWarmPools (one
// namespace or all) listed once, then watched, each change pushed as the contract's
// `sandboxes:changed` event carrying the changed row (or its deletion), so the renderer patches
// the rows it holds instead of listing four kinds again. A Sandbox's change also re-sends its
// claim's row (a claim shows its Sandbox's suspended state). When a watch drops it
// reconnects with backoff and re-lists first, and what changed while it was away is pushed as
// events too, so a dropped connection loses nothing. A watch the server ends on its own
// (timeoutSeconds) continues from the last resourceVersion without a re-list.
import { randomUUID } from "node:crypto";
import { Watch, type KubeConfig } from "@kubernetes/client-node";
import { backoffMs } from "@keel/core/backoff";
import type { K8sObject } from "@keel/core/k8s";
import { sandboxKinds, type Emit, type SandboxKind, type SandboxRow, type WatchStatus } from "../shared/contract.ts";
import { expectStatus, KubeError, kubeRequest } from "./kube.ts";
import { KINDS, resourcePath, toRow } from "./sandboxes.ts";

export type SandboxWatchOptions = {
  kc: KubeConfig;
  context: string;
  namespace?: string | undefined;
  emit: Emit;
  /** Reconnect delay: exponential with jitter from baseMs, capped at maxMs. */
  backoff?: { baseMs: number; maxMs: number };
  /** The API server ends each watch after this long (a stalled connection cannot last longer). */
  watchTimeoutSeconds?: number;
};

type Versions = Map<string, string>;
const MIN_WATCH_MS = 1_000; // "namespace/name" → resourceVersion

export class SandboxWatch {
  readonly id = randomUUID();
  private stopped = false;
  private readonly versions = new Map<SandboxKind, Versions>();
  /** The objects of every kind by "namespace/name": rows are made from them (claims with their Sandbox). */
  private readonly objects = new Map<SandboxKind, Map<string, K8sObject>>(sandboxKinds.map((k) => [k, new Map()]));
  private readonly aborts = new Set<AbortController>();
  private readonly wakers = new Set<() => void>();
  private readonly failing = new Map<SandboxKind, { attempt: number; message: string }>();
  private loops: Promise<void>[] = [];
  private st: WatchStatus;

  constructor(private readonly o: SandboxWatchOptions) {
    this.st = { watchId: this.id, context: o.context, namespace: o.namespace ?? null, state: "watching", attempt: 0, message: null };
  }

  status(): WatchStatus {
    return { ...this.st };
  }

  /** Lists every kind once (a wrong context, no access or no agent-sandbox fails here, clearly), then watches. */
  async start(): Promise<WatchStatus> {
    const rvs = await Promise.all(sandboxKinds.map((kind) => this.list(kind)));
    this.loops = sandboxKinds.map((kind, i) => this.loop(kind, rvs[i]!));
    this.o.emit("sandboxes:watch:status", this.status());
    return this.status();
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const a of this.aborts) a.abort();
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
    this.st = { ...this.st, state: "stopped", attempt: 0, message: null };
    this.o.emit("sandboxes:watch:status", this.status());
  }

  private async loop(kind: SandboxKind, rv: string): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      const openedAt = Date.now();
      let end = await this.watchOnce(kind, rv, (v) => (rv = v));
      if (this.stopped) return;
      // The server's timeoutSeconds: watch on from rv. A watch closed as soon as it opened
      // (a proxy in the way) counts as a failure, so it cannot spin.
      if (end.ok && Date.now() - openedAt >= MIN_WATCH_MS) continue;
      if (end.ok) end = { ok: false, message: `the watch of ${KINDS[kind].plural} was closed as soon as it opened` };
      attempt++;
      this.setFailing(kind, attempt, end.message);
      await this.sleep(backoffMs(attempt, this.o.backoff?.baseMs ?? 500, this.o.backoff?.maxMs ?? 30_000));
      if (this.stopped) return;
      try {
        rv = await this.list(kind);
        attempt = 0;
        this.setFailing(kind, 0, null);
      } catch (err) {
        this.setFailing(kind, attempt, (err as Error).message);
      }
    }
  }

  /** One watch connection until it ends. ok: ended by the server normally; else why it dropped. */
  private watchOnce(kind: SandboxKind, rv: string, setRv: (rv: string) => void): Promise<{ ok: true } | { ok: false; message: string }> {
    const what = `watch of ${KINDS[kind].plural}${this.o.namespace ? ` in namespace ${this.o.namespace}` : ""}`;
    return new Promise((resolve) => {
      let abort: AbortController | undefined;
      let settled = false;
      const finish = (r: { ok: true } | { ok: false; message: string }) => {
        if (settled) return;
        settled = true;
        if (abort) this.aborts.delete(abort);
        resolve(r);
      };
      new Watch(this.o.kc)
        .watch(
          resourcePath(kind, this.o.namespace),
          { resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds: this.o.watchTimeoutSeconds ?? 300 },
          (type, obj: K8sObject) => {
            const v = obj?.metadata?.resourceVersion;
            if (type === "ERROR") {
              // e.g. 410 Gone: rv is older than etcd keeps. Re-list.
              finish({ ok: false, message: `${what} ended by the API server: ${(obj as { message?: string })?.message ?? "error"}` });
              return;
            }
            if (v) setRv(v);
            if (type === "BOOKMARK") return;
            const key = `${obj.metadata.namespace ?? ""}/${obj.metadata.name}`;
            const versions = this.versions.get(kind)!;
            if (type === "DELETED") {
              versions.delete(key);
              this.objects.get(kind)!.delete(key);
            } else {
              if (v) versions.set(key, v);
              this.objects.get(kind)!.set(key, obj);
            }
            this.changedKey(kind, key);
          },
          (err: unknown) => finish(err ? { ok: false, message: `${what} dropped: ${describeError(err)}` } : { ok: true }),
        )
        .then(
          (a) => {
            abort = a;
            if (settled || this.stopped) a.abort();
            else this.aborts.add(a);
          },
          (err: unknown) => finish({ ok: false, message: `${what} could not start: ${describeError(err)}` }),
        );
    });
  }

  /** Lists one kind, pushes what differs from what was known, returns the list's resourceVersion. */
  private async list(kind: SandboxKind): Promise<string> {
    const res = await kubeRequest<{ metadata: { resourceVersion: string }; items: K8sObject[] }>(this.o.kc, "GET", resourcePath(kind, this.o.namespace));
    const body = expectStatus(this.o.kc, res, `list ${KINDS[kind].plural}${this.o.namespace ? ` in namespace ${this.o.namespace}` : " in all namespaces"}`);
    const before = this.versions.get(kind);
    const now: Versions = new Map(body.items.map((o) => [`${o.metadata.namespace ?? ""}/${o.metadata.name}`, o.metadata.resourceVersion ?? ""]));
    this.versions.set(kind, now);
    this.objects.set(kind, new Map(body.items.map((o) => [`${o.metadata.namespace ?? ""}/${o.metadata.name}`, o])));
    if (before) {
      for (const [key, v] of now) if (before.get(key) !== v) this.changedKey(kind, key);
      for (const key of before.keys()) if (!now.has(key)) this.changedKey(kind, key);
    }
    return body.metadata.resourceVersion;
  }

  /** Pushes the object's row as it is now (null: deleted); a Sandbox's change re-sends its claim's row too. */
  private changedKey(kind: SandboxKind, key: string) {
    const [namespace = "", name = ""] = key.split("/");
    const obj = this.objects.get(kind)!.get(key);
    const sandboxOf = (claim: K8sObject) => this.objects.get("Sandbox")!.get(`${namespace}/${claim.status?.sandbox?.name}`) ?? null;
    const row = obj ? toRow(kind, obj, Date.now(), kind === "SandboxClaim" ? sandboxOf(obj) : null) : null;
    this.changed(kind, namespace, name, row);
    if (kind === "Sandbox") {
      for (const [k, claim] of this.objects.get("SandboxClaim")!) {
        if (k.startsWith(`${namespace}/`) && claim.status?.sandbox?.name === name) this.changedKey("SandboxClaim", k);
      }
    }
  }

  private changed(kind: SandboxKind, namespace: string, name: string, row: SandboxRow | null) {
    if (!this.stopped) this.o.emit("sandboxes:changed", { context: this.o.context, kind, namespace, name, row });
  }

  private setFailing(kind: SandboxKind, attempt: number, message: string | null) {
    if (attempt === 0 || message === null) this.failing.delete(kind);
    else this.failing.set(kind, { attempt, message });
    const worst = [...this.failing.values()].sort((a, b) => b.attempt - a.attempt)[0];
    const next: WatchStatus = worst
      ? { ...this.st, state: "reconnecting", attempt: worst.attempt, message: worst.message }
      : { ...this.st, state: "watching", attempt: 0, message: null };
    if (this.stopped || (next.state === this.st.state && next.attempt === this.st.attempt && next.message === this.st.message)) return;
    this.st = next;
    this.o.emit("sandboxes:watch:status", this.status());
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }
}

function describeError(err: unknown): string {
  if (err instanceof KubeError) return err.message;
  const e = err as { message?: string; code?: string; statusCode?: number };
  if (e?.statusCode) return `HTTP ${e.statusCode} ${e.message ?? ""}`.trim();
  return [e?.message, e?.code && !e.message?.includes(e.code) ? `(${e.code})` : ""].filter(Boolean).join(" ") || String(err);
}
