// The Kubernetes sandbox driver, on kubernetes-sigs/agent-sandbox (v1.0.1, v1beta1 APIs).
//
// Per team: a namespace `<prefix><teamId>`, a Secret with the team's exposed secrets, a
// SandboxTemplate (runtime image, resources, workspace PVC, NetworkPolicy: ingress only from
// workers, egress default-deny plus the allow-list), copies of the configured image pull Secrets,
// and a SandboxWarmPool (a v1beta1 claim names its pool, never a template; replicas 0 means
// "no warm sandboxes"). Per session: a SandboxClaim `s-<sessionId>` labelled
// with team and session, so any worker finds it again (reattach = read the claim).
//
// The runtime token (tokens.ts): a template's pods start with a start token from a Secret, which
// opens nothing but the hand-over; on first contact a worker gives the pod its session's own
// token through the runtime. Warm-pool pods, started before any session exists, work the same
// way (a claim with env would make agent-sandbox bypass the pool). No token is in a pod spec, a
// claim or the database: every worker derives them from KEEL_SECRETS_KEY.
//
// The data plane (exec, files) is the same runtime protocol as the local driver, over the pod IP;
// `runtimeClient` makes it pluggable (tests on kwok have no running container).
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { egressGrantKey, signEgressGrant } from "@keel/sandbox/egress-grant";
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../../logger.js";
import { silentLogger } from "../../logger.js";
import { backoffMs } from "../../backoff.js";
import type {
  DriverHealth,
  ExecRequest,
  ExecResult,
  Fence,
  FileContent,
  FileEntry,
  SandboxDriver,
  SandboxHandle,
  SandboxInfo,
  SandboxSecrets,
  SandboxState,
} from "../driver.js";
import { SandboxQuotaExceededError, SandboxRequestError, SandboxUnavailableError } from "../errors.js";
import { ValidationError } from "../../errors.js";
import { parseEgressAllowList } from "../egress.js";
import { exposedSecrets, type SandboxPolicy } from "../policy.js";
import { RuntimeClient, type RuntimeHealth } from "../runtime-client.js";
import type { SandboxStore } from "../store.js";
import { KubeApi, KubernetesConflictError, type KubeApiOptions } from "./api.js";
import {
  ANNOTATIONS,
  API_VERSION,
  CORE_GROUP,
  EXT_GROUP,
  LABELS,
  MANAGER,
  RUNTIME_PORT,
  SANDBOX_PRIORITY_CLASS,
  sandboxNames,
  sessionSelector,
  teamNamespace,
  TOKEN_ENV,
  CONTAINER,
  validateNamespacePrefix,
  WORKER_POD_LABELS,
  type SandboxNames,
} from "./names.js";
import {
  claimObject,
  DEFAULT_TEAM_QUOTA,
  egressRules,
  limitRangeObject,
  namespaceObject,
  QUOTA_SETTING,
  quotaObject,
  pullSecretCopy,
  runtimeSecretObject,
  secretObject,
  templateObject,
  warmPoolObject,
  type K8sObject,
  type EgressProxyTarget,
  type TeamQuota,
  type TemplateConfig,
  type Toleration,
} from "./objects.js";
import { claimState, quotaRefusal, sandboxSuspended, type QuotaRefusal } from "./state.js";
import { RuntimeTokens } from "./tokens.js";

/** What the driver needs of a runtime client: the local driver's RuntimeClient fits. */
export type RuntimeApi = Pick<RuntimeClient, "exec" | "readFile" | "writeFile" | "listFiles" | "setToken"> & {
  health(opts?: { timeoutMs?: number }): Promise<RuntimeHealth>;
};
/** A runtime client bound to one pod's address. */
type PodRuntime = RuntimeApi & { readonly podIP: string };
export type RuntimeEndpoint = { baseUrl: string; podIP: string; namespace: string; claim: string };

export type KubernetesDriverOptions = {
  kubeConfig: KubeConfig;
  /** KEEL_SECRETS_KEY (32 bytes): every worker derives the same runtime tokens from it (tokens.ts). */
  tokenKey: Buffer;
  /** The sandbox image (it contains /app/sandbox/dist/runtime.mjs and tini), e.g. ghcr.io/acme/keel-sandbox:1.2.3. */
  image: string;
  namespacePrefix?: string;
  runtimePort?: number;
  /** Pod CPU limit of a sandbox (memory comes from the policy). */
  cpu?: string;
  /** Sandboxes kept started per team template; 0: none. */
  warmPoolReplicas?: number;
  /** StorageClass of each sandbox's workspace PVC (size: the policy's `workspaceMb`); unset: the cluster default. */
  storageClassName?: string;
  /** Image pull Secrets in the workers' namespace, copied into each team namespace for `image`. */
  imagePullSecrets?: string[];
  /** Internal ranges egress allow-lists may reach (KEEL_SANDBOX_EGRESS_INTERNAL); the rest is carved out of every rule (objects.ts egressRules). */
  egressInternalAllow?: string[];
  /**
   * The shared egress proxy (KEEL_SANDBOX_EGRESS_PROXY, k8s/base/egress-proxy.yaml): a host name or
   * address this worker resolves (the Service), its port, and the labels of its pods in the
   * workers' namespace. Unset: allow-lists take addresses only (NetworkPolicy cannot match names).
   */
  egressProxy?: { host: string; port: number; podLabels?: Record<string, string> };
  /** The RuntimeClass of every sandbox pod unless a team picks another (KEEL_SANDBOX_RUNTIME_CLASS). */
  runtimeClass?: string;
  /** The RuntimeClasses a team's policy may pick (KEEL_SANDBOX_RUNTIME_CLASSES). */
  runtimeClasses?: string[];
  /** Dedicated nodes for sandbox pods (KEEL_SANDBOX_NODE_SELECTOR, KEEL_SANDBOX_TOLERATIONS). */
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Per team namespace: the ResourceQuota and LimitRange values (KEEL_SANDBOX_QUOTA_*, KEEL_SANDBOX_MAX_*); unset keys: DEFAULT_TEAM_QUOTA. */
  teamQuota?: Partial<TeamQuota>;
  /** The sandbox pods' PriorityClass (KEEL_SANDBOX_PRIORITY_CLASS; k8s/base/priority.yaml makes keel-sandbox). */
  priorityClassName?: string;
  /** The workers' namespace and pod labels: the runtime port accepts connections only from them (default: namespace `keel`, WORKER_POD_LABELS). */
  workers?: TemplateConfig["workers"];
  readyTimeoutMs?: number;
  /** How long API calls are retried through connection errors, 5xx and 429. */
  apiRetryMs?: number;
  runtimeClient?: (endpoint: RuntimeEndpoint, token: string) => RuntimeApi;
  /** Called before every API request: a race seam for tests (see KubeApiOptions). */
  beforeApiCall?: KubeApiOptions["beforeCall"];
  store?: SandboxStore;
  logger?: Logger;
};

const CLAIM = { apiVersion: `${EXT_GROUP}/${API_VERSION}`, kind: "SandboxClaim" };
const SANDBOX = { apiVersion: `${CORE_GROUP}/${API_VERSION}`, kind: "Sandbox" };
const TEMPLATE = { apiVersion: `${EXT_GROUP}/${API_VERSION}`, kind: "SandboxTemplate" };

export class KubernetesSandboxDriver implements SandboxDriver {
  readonly name = "kubernetes";
  readonly api: KubeApi;
  private readonly o: Required<
    Omit<
      KubernetesDriverOptions,
      | "store"
      | "logger"
      | "kubeConfig"
      | "tokenKey"
      | "egressProxy"
      | "beforeApiCall"
      | "storageClassName"
      | "runtimeClass"
      | "runtimeClasses"
      | "nodeSelector"
      | "tolerations"
      | "teamQuota"
    >
  > &
    KubernetesDriverOptions;
  private readonly quota: TeamQuota;
  private readonly log: Logger;
  private readonly teams = new Map<string, string>();
  private readonly tokens: RuntimeTokens;
  private readonly grantKey: Buffer;
  /** The egress proxy's address, resolved once per process (again after a failure). */
  private proxyAddress?: Promise<string>;
  private readonly clients = new Map<string, PodRuntime>();
  private readonly inProcess = new Map<string, Promise<unknown>>();

  constructor(opts: KubernetesDriverOptions) {
    this.o = {
      namespacePrefix: "keel-team-",
      runtimePort: RUNTIME_PORT,
      cpu: "1",
      warmPoolReplicas: 0,
      readyTimeoutMs: 120_000,
      apiRetryMs: 30_000,
      imagePullSecrets: [],
      egressInternalAllow: [],
      priorityClassName: SANDBOX_PRIORITY_CLASS,
      // A library default only: createSandboxDriver passes the namespace the worker runs in.
      workers: { namespace: "keel", podLabels: { ...WORKER_POD_LABELS } },
      runtimeClient: (e, token) => new RuntimeClient({ baseUrl: e.baseUrl }, token),
      ...opts,
    };
    validateNamespacePrefix(this.o.namespacePrefix);
    this.tokens = new RuntimeTokens(opts.tokenKey);
    this.grantKey = egressGrantKey(opts.tokenKey);
    this.quota = { ...DEFAULT_TEAM_QUOTA, ...opts.teamQuota };
    this.log = opts.logger ?? silentLogger;
    this.api = new KubeApi(opts.kubeConfig, {
      retryMs: this.o.apiRetryMs,
      logger: this.log,
      ...(opts.beforeApiCall ? { beforeCall: opts.beforeApiCall } : {}),
    });
  }

  async health(): Promise<DriverHealth> {
    try {
      await this.api.ensureAgentSandbox();
      const claims = await this.api.list(CLAIM.apiVersion, CLAIM.kind, sessionSelector());
      return { ok: true, driver: this.name, message: "agent-sandbox is installed and the API server answers", details: { claims: claims.length } };
    } catch (err) {
      return { ok: false, driver: this.name, message: (err as Error).message };
    }
  }

  async acquire(sessionId: string, teamId: string, policy: SandboxPolicy, secrets: SandboxSecrets = {}): Promise<SandboxHandle> {
    const names = sandboxNames({ namespacePrefix: this.o.namespacePrefix, teamId, sessionId, template: policy.template });
    egressRules(policy.egress, this.o.egressInternalAllow, this.proxyTarget()); // a policy NetworkPolicy cannot express fails before any API call
    this.runtimeClassFor(policy); // so does a RuntimeClass the operator does not offer
    this.checkSandboxLimits(policy); // and a sandbox larger than the team's LimitRange admits
    return this.serialized(`${teamId}/${sessionId}`, async () => {
      await this.api.ensureAgentSandbox();
      await this.ensureTeam(names, teamId, policy, secrets);
      const ref = { ...CLAIM, namespace: names.namespace, name: names.claim };
      let claim = await this.api.get(ref);
      let created = false;
      for (let attempt = 1; ; attempt++) {
        if (claim) {
          const state = claimState(claim, await this.sandboxOf(claim));
          if (state === "terminated" || state === "failed") {
            // Expired, being deleted, or failed for good: make room for a new one.
            const old = claim.metadata.uid!;
            this.log.info({ teamId, sessionId, sandboxId: old, state }, "sandbox replaced");
            await this.api.delete(ref, { uid: old, propagation: "Foreground" });
            await this.api.waitFor(
              ref,
              (c) => (c === null || c.metadata.uid !== old ? true : undefined),
              this.o.readyTimeoutMs,
              `the old claim ${names.claim} to go away`,
            );
            claim = null;
          } else {
            if (state === "suspended") await this.setOperatingMode(claim, "Running");
            break;
          }
        }
        try {
          claim = await this.api.create(
            claimObject({
              namespace: names.namespace,
              name: names.claim,
              teamId,
              sessionId,
              pool: names.pool,
              policy,
              now: Date.now(),
            }),
          );
          created = true;
          await this.record(claim, "provisioning");
          break;
        } catch (err) {
          // The name is taken: another worker created the claim between our read and our create,
          // or our own create went through and its answer was lost (the retry then sees 409).
          // Either way that claim is this session's: use it rather than fail or make a second one.
          if (!(err instanceof KubernetesConflictError) || attempt >= 3) throw err;
          claim = await this.api.get(ref);
        }
      }
      const uid = claim!.metadata.uid!;
      let refused: K8sObject | undefined;
      const ready = await this.api
        .waitFor(
          ref,
          (c) => {
            if (!c || c.metadata.uid !== uid) throw new SandboxUnavailableError("the sandbox claim was deleted while it was starting", { claim: names.claim });
            const s = claimState(c);
            if (s === "failed" || s === "terminated")
              throw new SandboxUnavailableError(`the sandbox could not start: ${readyReason(c)}`, { claim: names.claim, namespace: names.namespace });
            // Over quota the controller retries for ever: fail now, not at readyTimeoutMs.
            const over = quotaRefusal(c);
            if (over) {
              refused = c;
              throw quotaExceeded(teamId, names.namespace, over);
            }
            return s === "ready" && c.status?.sandbox?.podIPs?.length ? c : undefined;
          },
          this.o.readyTimeoutMs,
          `sandbox claim ${names.namespace}/${names.claim} to be Ready`,
        )
        .catch(async (err: unknown) => {
          if (err instanceof SandboxQuotaExceededError && refused) await this.standDown(refused, created, err);
          throw err;
        });
      this.clients.set(uid, this.connect(ready));
      await this.record(ready, "ready");
      return { sandboxId: uid, teamId, sessionId, driver: this.name };
    });
  }

  exec(h: SandboxHandle, req: ExecRequest): Promise<ExecResult> {
    return this.withRuntime(h, (c) => c.exec(req));
  }
  readFile(h: SandboxHandle, p: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<FileContent> {
    return this.withRuntime(h, (c) => c.readFile(p, opts));
  }
  writeFile(h: SandboxHandle, p: string, content: string, opts: Fence & { encoding?: "utf8" | "base64" } = {}) {
    return this.withRuntime(h, (c) => c.writeFile(p, content, opts));
  }
  listFiles(
    h: SandboxHandle,
    p: string,
    opts: { recursive?: boolean; maxEntries?: number; signal?: AbortSignal } = {},
  ): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    return this.withRuntime(h, (c) => c.listFiles(p, opts));
  }

  /** operatingMode Suspended: agent-sandbox deletes the pod and keeps the Sandbox and its
   *  workspace PVC, so the files are there again on resume. */
  async suspend(h: SandboxHandle): Promise<void> {
    await this.serialized(`${h.teamId}/${h.sessionId}`, async () => {
      const claim = await this.claimOf(h);
      if (!claim) return;
      await this.setOperatingMode(claim, "Suspended");
      this.clients.delete(h.sandboxId);
      await this.record(claim, "suspended");
    });
  }

  async resume(h: SandboxHandle, policy: SandboxPolicy, secrets: SandboxSecrets = {}): Promise<void> {
    if (!(await this.claimOf(h))) throw new SandboxUnavailableError("the sandbox was terminated; acquire a new one");
    await this.acquire(h.sessionId, h.teamId, policy, secrets);
  }

  /** Deletes the claim; the garbage collector deletes its Sandbox, Pod and NetworkPolicy. */
  async release(h: SandboxHandle): Promise<void> {
    await this.serialized(`${h.teamId}/${h.sessionId}`, async () => {
      this.clients.delete(h.sandboxId);
      await this.api.delete(this.claimRef(h), { uid: h.sandboxId, propagation: "Background" });
      await this.o.store?.record({
        id: h.sandboxId,
        teamId: h.teamId,
        sessionId: h.sessionId,
        driver: this.name,
        state: "terminated",
        lastError: null,
        lastActiveAt: new Date(),
      });
    });
  }

  async list(filter: { teamId?: string } = {}): Promise<SandboxInfo[]> {
    const ns = filter.teamId ? teamNamespace(this.o.namespacePrefix, filter.teamId) : undefined;
    const [claims, sandboxes] = await Promise.all([
      this.api.list(CLAIM.apiVersion, CLAIM.kind, sessionSelector(filter.teamId), ns),
      this.api.list(SANDBOX.apiVersion, SANDBOX.kind, "", ns),
    ]);
    const byOwner = new Map(sandboxes.flatMap((s) => (s.metadata.ownerReferences ?? []).map((o) => [o.uid, s] as const)));
    return Promise.all(
      claims.map(async (c) => {
        const state = claimState(c, byOwner.get(c.metadata.uid!) ?? null);
        const createdAt = new Date(c.metadata.creationTimestamp!);
        let lastActiveAt = createdAt.getTime();
        let inFlight: number | undefined;
        const client = state === "ready" ? this.clients.get(c.metadata.uid!) : undefined;
        const h = await client?.health({ timeoutMs: 1_000 }).catch(() => undefined);
        if (h) {
          lastActiveAt = Math.max(lastActiveAt, Date.now() - h.idleMs);
          inFlight = h.inFlight;
        }
        const info: SandboxInfo = {
          sandboxId: c.metadata.uid!,
          teamId: c.metadata.labels![LABELS.team]!,
          sessionId: c.metadata.labels![LABELS.session]!,
          driver: this.name,
          state,
          createdAt,
          lastActiveAt: new Date(lastActiveAt),
          idleTimeoutMs: Number(c.metadata.annotations?.[ANNOTATIONS.idleTimeoutMs] ?? 15 * 60_000),
          ttlMs: Number(c.metadata.annotations?.[ANNOTATIONS.ttlMs] ?? 24 * 3_600_000),
          ...(inFlight !== undefined ? { inFlight } : {}),
          ...(state === "failed" ? { lastError: readyReason(c) } : {}),
        };
        return info;
      }),
    );
  }

  /** Teams that have a namespace here (labelled by Keel, named with this installation's prefix), not being deleted. */
  async teamsWithResources(): Promise<string[]> {
    const nss = await this.api.list("v1", "Namespace", `${LABELS.managedBy}=${MANAGER}`);
    return nss
      .filter((n) => n.metadata.name.startsWith(this.o.namespacePrefix) && !n.metadata.deletionTimestamp && n.metadata.labels?.[LABELS.team])
      .map((n) => n.metadata.labels![LABELS.team]!);
  }

  /** Deletes the team's namespace: claims, Sandboxes, pods, workspace PVCs, Secrets, templates and pools go with it. */
  async removeTeam(teamId: string): Promise<void> {
    const namespace = teamNamespace(this.o.namespacePrefix, teamId);
    await this.api.delete({ apiVersion: "v1", kind: "Namespace", name: namespace }, { propagation: "Background" });
    for (const key of [...this.teams.keys()]) if (key.startsWith(`${namespace}/`)) this.teams.delete(key);
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  /** The team's RuntimeClass if the operator offers it, else the operator's default; a class not offered is a 422 naming the ones that are. */
  private runtimeClassFor(policy: SandboxPolicy): string | undefined {
    const pick = policy.runtimeClass;
    if (pick === undefined || pick === this.o.runtimeClass) return this.o.runtimeClass;
    const offered = this.o.runtimeClasses ?? [];
    if (!offered.includes(pick)) {
      throw new ValidationError(
        `the sandbox policy asks for RuntimeClass "${pick}", which this installation does not offer (${offered.length ? `offered: ${offered.join(", ")}` : "none offered"}; default: ${this.o.runtimeClass ?? "the nodes' runtime"}): the operator lists the classes teams may pick in KEEL_SANDBOX_RUNTIME_CLASSES`,
        { runtimeClass: pick },
      );
    }
    return pick;
  }

  private proxyTarget(): EgressProxyTarget | undefined {
    const p = this.o.egressProxy;
    return p
      ? {
          namespace: this.o.workers.namespace,
          podLabels: p.podLabels ?? { "app.kubernetes.io/name": "keel", "app.kubernetes.io/component": "egress-proxy" },
          port: p.port,
        }
      : undefined;
  }

  /**
   * With host names in the allow-list: the pods' proxy URL, `http://keel:<grant>@<address>:<port>`,
   * the grant signed for this team and template (sandbox/src/egress-grant.ts). The proxy's name is
   * resolved here, by the worker: sandbox pods get no DNS (a DNS query can carry data out).
   */
  private async egressProxyUrl(teamId: string, template: string, policy: SandboxPolicy): Promise<string | undefined> {
    const p = this.o.egressProxy;
    if (!p || policy.egress === "none") return undefined;
    const rules = parseEgressAllowList(policy.egress.allow);
    if (rules.every((r) => r.kind === "cidr")) return undefined;
    // Once per process, not per sandbox start (a Service's address is stable); a failure is not kept.
    this.proxyAddress ??= (isIP(p.host) ? Promise.resolve(p.host) : lookup(p.host).then((a) => a.address)).catch((err: Error) => {
      this.proxyAddress = undefined;
      throw new SandboxUnavailableError(
        `the egress proxy ${p.host} (KEEL_SANDBOX_EGRESS_PROXY) does not resolve from this worker: is k8s/base/egress-proxy.yaml applied? ${err.message}`,
        { host: p.host },
        { cause: err },
      );
    });
    const address = await this.proxyAddress;
    const grant = signEgressGrant(this.grantKey, { team: teamId, template, rules, internal: parseEgressAllowList(this.o.egressInternalAllow) });
    return `http://keel:${grant}@${isIP(address) === 6 ? `[${address}]` : address}:${p.port}`;
  }

  /** A sandbox the team's LimitRange would refuse fails here with the limit's name, before any API call. */
  private checkSandboxLimits(policy: SandboxPolicy): void {
    const { workspaceMb, memoryMb } = policy.resources;
    const q = this.quota;
    if (workspaceMb > q.maxWorkspaceMb) {
      throw new ValidationError(
        `the sandbox policy asks for a ${workspaceMb} MB workspace; this installation allows at most ${q.maxWorkspaceMb} MB per sandbox: lower resources.workspaceMb, or the operator raises KEEL_SANDBOX_MAX_WORKSPACE_MB`,
        { workspaceMb, maxWorkspaceMb: q.maxWorkspaceMb },
      );
    }
    if (memoryMb > q.maxMemoryMb) {
      throw new ValidationError(
        `the sandbox policy asks for ${memoryMb} MB of memory; this installation allows at most ${q.maxMemoryMb} MB per sandbox: lower resources.memoryMb, or the operator raises KEEL_SANDBOX_MAX_MEMORY_MB`,
        { memoryMb, maxMemoryMb: q.maxMemoryMb },
      );
    }
  }

  /**
   * After a quota refusal, make sure the claim does not take the team's next free slot later (the
   * controller keeps retrying, and the session may never come back for it): a claim this acquire
   * created is deleted (it holds nothing yet; the next acquire makes a new one); an existing one
   * (a resume) is suspended again, so its workspace is kept. A failure here is logged: the quota
   * error is the one to report.
   */
  private async standDown(claim: K8sObject, created: boolean, err: SandboxQuotaExceededError): Promise<void> {
    const id = { teamId: claim.metadata.labels?.[LABELS.team], sessionId: claim.metadata.labels?.[LABELS.session], sandboxId: claim.metadata.uid };
    try {
      if (created) {
        await this.api.delete(
          { ...CLAIM, namespace: claim.metadata.namespace!, name: claim.metadata.name },
          { uid: claim.metadata.uid!, propagation: "Background" },
        );
        await this.record(claim, "terminated", err.message);
      } else if (claim.status?.sandbox?.name) {
        await this.setOperatingMode(claim, "Suspended");
        await this.record(claim, "suspended");
      }
      this.log.warn({ ...id, quota: err.details.quota, deleted: created }, "sandbox over quota");
    } catch (cleanup) {
      this.log.warn({ ...id, err: (cleanup as Error).message }, "sandbox over quota; could not stand its claim down");
    }
  }

  /** Namespace, Secret, template and pool, applied when their config changed (once per process
   *  and team otherwise: the template's config-hash annotation says what is there). */
  private async ensureTeam(names: SandboxNames, teamId: string, policy: SandboxPolicy, secrets: SandboxSecrets): Promise<void> {
    const exposed = exposedSecrets(policy, secrets);
    const runtimeClass = this.runtimeClassFor(policy);
    const proxyUrl = await this.egressProxyUrl(teamId, names.template, policy);
    const hash = createHash("sha256")
      .update(
        JSON.stringify([
          this.o.image,
          this.o.cpu,
          this.o.runtimePort,
          this.o.warmPoolReplicas,
          this.o.workers,
          policy.resources,
          policy.egress,
          policy.secrets,
          this.o.storageClassName ?? null,
          this.o.imagePullSecrets,
          this.o.egressInternalAllow,
          "secret-per-template", // templates written before each had its own Secret are rewritten
          "start-token", // and those that held a runtime token in the pod spec
          runtimeClass ?? null,
          this.o.nodeSelector ?? null,
          this.o.tolerations ?? null,
          proxyUrl ?? null,
          this.o.priorityClassName,
          this.quota,
        ]),
      )
      .digest("hex")
      .slice(0, 16);
    // Secret values are not hashed into an annotation; the Secret is re-applied when they change.
    const secretsDigest = createHash("sha256")
      .update(JSON.stringify(Object.entries(exposed).sort()))
      .digest("hex");
    const key = `${names.namespace}/${names.template}`;
    if (this.teams.get(key) === `${hash}:${secretsDigest}`) return;
    const existing = await this.api.get({ ...TEMPLATE, namespace: names.namespace, name: names.template });
    if (!existing) await this.api.apply(namespaceObject(names.namespace, teamId));
    await this.api.apply(secretObject(names.namespace, names.template, teamId, exposed));
    await this.api.apply(runtimeSecretObject(names.namespace, names.template, teamId, this.tokens.start(names.namespace, names.template), proxyUrl));
    await this.copyPullSecrets(names.namespace, teamId);
    const configChanged = existing?.metadata.annotations?.[ANNOTATIONS.configHash] !== hash;
    if (configChanged) {
      const cfg: TemplateConfig = {
        image: this.o.image,
        runtimePort: this.o.runtimePort,
        cpu: this.o.cpu,
        workers: this.o.workers,
        imagePullSecrets: this.o.imagePullSecrets,
        egressInternalAllow: this.o.egressInternalAllow,
        ...(runtimeClass ? { runtimeClassName: runtimeClass } : {}),
        ...(this.o.nodeSelector ? { nodeSelector: this.o.nodeSelector } : {}),
        ...(this.o.tolerations ? { tolerations: this.o.tolerations } : {}),
        ...(this.o.priorityClassName ? { priorityClassName: this.o.priorityClassName } : {}),
        ...(this.o.storageClassName ? { storageClassName: this.o.storageClassName } : {}),
        ...(proxyUrl ? { egressProxy: { ...this.proxyTarget()!, grantDigest: createHash("sha256").update(proxyUrl).digest("hex").slice(0, 16) } } : {}),
      };
      await this.api.apply(templateObject(names.namespace, names.template, teamId, policy, cfg, hash));
    }
    // The team's limits before any pod of it (the warm pool's included): applied whenever this
    // process prepares the team, so a hand-edited quota is back to the configured values after a
    // worker restart. After the template: a template the API server refuses is reported as that,
    // while a LimitRange with a malformed quantity is answered 500 (failed conversion) and retried.
    await this.api.apply(quotaObject(names.namespace, teamId, this.quota));
    await this.api.apply(limitRangeObject(names.namespace, teamId, this.quota, this.o.cpu));
    if (configChanged) await this.api.apply(warmPoolObject(names.namespace, names.pool, teamId, this.o.warmPoolReplicas));
    this.teams.set(key, `${hash}:${secretsDigest}`);
  }

  /** Pods pull from the namespace they run in, so each team namespace gets a copy of the workers'
   *  pull Secrets (re-copied whenever the team is prepared again: a rotated credential follows). */
  private async copyPullSecrets(namespace: string, teamId: string): Promise<void> {
    for (const name of this.o.imagePullSecrets) {
      const source = await this.api.get({ apiVersion: "v1", kind: "Secret", namespace: this.o.workers.namespace, name });
      if (!source) {
        throw new SandboxUnavailableError(
          `the image pull Secret ${this.o.workers.namespace}/${name} (KEEL_SANDBOX_IMAGE_PULL_SECRETS) does not exist: create it there, or remove the name`,
          { namespace: this.o.workers.namespace, secret: name },
        );
      }
      await this.api.apply(pullSecretCopy(source, namespace, teamId));
    }
  }

  private async withRuntime<T>(h: SandboxHandle, fn: (c: RuntimeApi) => Promise<T>): Promise<T> {
    const cached = this.clients.get(h.sandboxId);
    if (cached) {
      try {
        return await fn(cached);
      } catch (err) {
        // The pod behind a cached client can be gone (TTL, a release or suspend by another
        // worker), and its IP may now belong to another sandbox (whose runtime refuses our token:
        // 401) or to something else entirely (an answer without the runtime's JSON error code).
        // Re-read the claim before blaming the runtime. The call is not repeated unless it
        // cannot have run: a command may have run before the connection failed. A 401 from the claim's own pod is a runtime
        // that restarted and lost its session token (a container restart keeps the pod): it did
        // nothing with the call, so the call goes again through a new hand-over.
        const refused = err instanceof SandboxRequestError && err.status === 401;
        const notOurRuntime = refused || (err instanceof SandboxRequestError && err.code === "sandbox_error");
        if (!(err instanceof SandboxUnavailableError || notOurRuntime)) throw err;
        this.clients.delete(h.sandboxId);
        const claim = await this.claimOf(h);
        const sandbox = claim ? await this.sandboxOf(claim) : null;
        const state = claim ? claimState(claim, sandbox) : "terminated";
        if (neverReached(err) && (state === "ready" || state === "provisioning" || state === "requested")) {
          // Nothing listens at the address: the pod was deleted under us, and the controller is
          // making its successor or has not noticed yet. The request never left, so it goes to
          // the successor once the claim names it. A Ready claim still naming the refusing
          // address predates the deletion (seen on kind: `kubectl delete pod` returns before the
          // claim's status changes); trusting it was the failure.
          const next = await this.nextPod(h, cached.podIP, err);
          const again = this.connect(next);
          this.clients.set(h.sandboxId, again);
          return fn(again);
        }
        if (state !== "ready") throw new SandboxUnavailableError(`the sandbox is ${state}; acquire it again`, { sandboxId: h.sandboxId }, { cause: err });
        if (!refused) throw err;
        const again = this.connect(claim!, sandbox);
        this.clients.set(h.sandboxId, again);
        return fn(again);
      }
    }
    // Another worker acquired it: the claim holds all we need (pod IP, uid, template).
    const claim = await this.claimOf(h);
    const sandbox = claim ? await this.sandboxOf(claim) : null;
    const state = claim ? claimState(claim, sandbox) : "terminated";
    if (!claim || state !== "ready") throw new SandboxUnavailableError(`the sandbox is ${state}; acquire it again`, { sandboxId: h.sandboxId });
    const client = this.connect(claim, sandbox);
    this.clients.set(h.sandboxId, client);
    return fn(client);
  }

  private endpointOf(claim: K8sObject): RuntimeEndpoint {
    const podIP: string | undefined = claim.status?.sandbox?.podIPs?.[0];
    if (!podIP) throw new SandboxUnavailableError("the sandbox has no pod IP yet; acquire it again", { claim: claim.metadata.name });
    const host = podIP.includes(":") ? `[${podIP}]` : podIP;
    return { baseUrl: `http://${host}:${this.o.runtimePort}`, podIP, namespace: claim.metadata.namespace!, claim: claim.metadata.name! };
  }

  /**
   * A client for the claim's runtime with the session's token (tokens.ts). Its first call makes
   * sure the pod holds that token: if the runtime refuses it (a fresh pod, or one whose runtime
   * restarted), the template's start token hands it over, once per pod; if another worker handed
   * it over in between, the session token works by then. A pod of an earlier release holds a
   * token in its spec (claim env, or the Sandbox's pod template) and is reached with that.
   * `sandbox`: the claim's Sandbox when the caller has read it (else read on first call).
   */
  private connect(claim: K8sObject, sandbox?: K8sObject | null): PodRuntime {
    const endpoint = this.endpointOf(claim);
    const { podIP, namespace } = endpoint;
    const token = this.tokens.session(namespace, claim.metadata.uid!);
    let client = this.o.runtimeClient(endpoint, token);
    let ready: Promise<void> | undefined;
    const handOver = async () => {
      const legacy =
        specToken(claim.spec?.env) ??
        specToken(
          (sandbox === undefined ? await this.sandboxOf(claim) : sandbox)?.spec?.podTemplate?.spec?.containers?.find(
            (c: { name: string }) => c.name === CONTAINER,
          )?.env,
        );
      if (legacy) return void (client = this.o.runtimeClient(endpoint, legacy));
      const refused = (err: unknown) => err instanceof SandboxRequestError && err.status === 401;
      try {
        return void (await client.health({ timeoutMs: 5_000 }));
      } catch (err) {
        if (!refused(err)) throw err;
      }
      const template: string = claim.spec?.warmPoolRef?.name;
      try {
        await this.o.runtimeClient(endpoint, this.tokens.start(namespace, template)).setToken(token);
        return;
      } catch (err) {
        if (!refused(err)) throw err;
      }
      try {
        await client.health({ timeoutMs: 5_000 });
      } catch (err) {
        if (!refused(err)) throw err;
        throw new SandboxUnavailableError(
          `the sandbox's runtime accepts neither this session's token nor its template's start token (was KEEL_SECRETS_KEY changed since it started?): release the sandbox to get a new one`,
          { claim: claim.metadata.name, namespace },
          { cause: err },
        );
      }
    };
    const first = () =>
      (ready ??= handOver().catch((err) => {
        ready = undefined;
        throw err;
      }));
    return {
      podIP,
      health: async (o) => (await first(), client.health(o)),
      exec: async (r) => (await first(), client.exec(r)),
      readFile: async (p, o) => (await first(), client.readFile(p, o)),
      writeFile: async (p, c, o) => (await first(), client.writeFile(p, c, o)),
      listFiles: async (p, o) => (await first(), client.listFiles(p, o)),
      setToken: async (t) => (await first(), client.setToken(t)),
    };
  }

  /**
   * The claim once it names a pod that listens (see withRuntime): Ready on another address, or
   * on the refused one when something answers there now (kwok and some CNIs give the successor
   * the same IP, and a Ready claim can predate the deletion). Polled, not watched: the claim may
   * not change at all while a reused address comes back.
   */
  private async nextPod(h: SandboxHandle, refusedIP: string, cause: unknown): Promise<K8sObject> {
    const ref = this.claimRef(h);
    const deadline = Date.now() + this.o.readyTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const c = await this.api.get(ref);
      if (!c || c.metadata.uid !== h.sandboxId || c.metadata.deletionTimestamp)
        throw new SandboxUnavailableError("the sandbox is terminated; acquire it again", { sandboxId: h.sandboxId }, { cause });
      const state = claimState(c);
      if (state === "failed" || state === "terminated")
        throw new SandboxUnavailableError(`the sandbox is ${state}; acquire it again`, { sandboxId: h.sandboxId }, { cause });
      const over = quotaRefusal(c);
      if (over) throw quotaExceeded(h.teamId, ref.namespace, over);
      const ip: string | undefined = c.status?.sandbox?.podIPs?.[0];
      if (state === "ready" && ip) {
        if (ip !== refusedIP) return c;
        const answer = await this.o
          .runtimeClient(this.endpointOf(c), "")
          .health({ timeoutMs: 2_000 })
          .then(
            () => true,
            (err: unknown) => !neverReached(err),
          );
        if (answer) return c;
      }
      if (Date.now() >= deadline)
        throw new SandboxUnavailableError(
          `the sandbox's runtime refused connections and no pod replaced it within ${this.o.readyTimeoutMs} ms; release the sandbox to get a new one`,
          { sandboxId: h.sandboxId, claim: ref.name, namespace: ref.namespace },
          { cause },
        );
      await sleep(backoffMs(attempt, 100, 2_000));
    }
  }

  /** The session's claim, named by the handle (the template does not enter a claim's name). */
  private claimRef(h: SandboxHandle) {
    const names = sandboxNames({ namespacePrefix: this.o.namespacePrefix, teamId: h.teamId, sessionId: h.sessionId, template: "x" });
    return { ...CLAIM, namespace: names.namespace, name: names.claim };
  }

  private async claimOf(h: SandboxHandle): Promise<K8sObject | null> {
    const claim = await this.api.get(this.claimRef(h));
    return claim && claim.metadata.uid === h.sandboxId && !claim.metadata.deletionTimestamp ? claim : null;
  }

  private async sandboxOf(claim: K8sObject): Promise<K8sObject | null> {
    const name: string | undefined = claim.status?.sandbox?.name;
    return name ? this.api.get({ ...SANDBOX, namespace: claim.metadata.namespace!, name }) : null;
  }

  private async setOperatingMode(claim: K8sObject, mode: "Running" | "Suspended"): Promise<void> {
    const name: string | undefined = claim.status?.sandbox?.name;
    if (!name) throw new SandboxUnavailableError("the sandbox has not been created yet", { claim: claim.metadata.name });
    const ref = { ...SANDBOX, namespace: claim.metadata.namespace!, name };
    await this.api.mergePatch(ref, { spec: { operatingMode: mode } });
    if (mode === "Suspended")
      await this.api.waitFor(ref, (s) => (s === null || sandboxSuspended(s) ? true : undefined), this.o.readyTimeoutMs, `sandbox ${name} to suspend`);
  }

  private async record(claim: K8sObject, state: SandboxState, lastError: string | null = state === "failed" ? readyReason(claim) : null): Promise<void> {
    await this.o.store?.record({
      id: claim.metadata.uid!,
      teamId: claim.metadata.labels![LABELS.team]!,
      sessionId: claim.metadata.labels![LABELS.session]!,
      driver: this.name,
      state,
      lastError,
      lastActiveAt: new Date(),
    });
  }

  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const next = (this.inProcess.get(key) ?? Promise.resolve()).then(fn, fn);
    this.inProcess.set(
      key,
      next.catch(() => {}),
    );
    return next;
  }
}

/** A runtime token written as a plain value in a pod spec or claim (earlier releases). */
function specToken(env: { name: string; value?: string }[] | undefined): string | undefined {
  return env?.find((e) => e.name === TOKEN_ENV)?.value;
}

function readyReason(c: K8sObject): string {
  const r = (c.status?.conditions as { type: string; reason?: string; message?: string }[] | undefined)?.find((x) => x.type === "Ready");
  return r ? `${r.reason ?? "unknown"}${r.message ? `: ${r.message}` : ""}` : "no Ready condition yet";
}

/** The over-quota error: which quota, what is used of what, and what to do about it. */
function quotaExceeded(teamId: string, namespace: string, r: QuotaRefusal): SandboxQuotaExceededError {
  const keys = Object.keys(r.limited);
  const what = r.resource === "persistentvolumeclaims" ? "its workspace volume" : "its pod";
  const usage = keys.map((k) => `${k} ${r.used[k] ?? "?"} of ${r.limited[k]} in use, ${r.requested[k] ?? "?"} more asked`).join("; ");
  const settings = [...new Set(keys.map((k) => QUOTA_SETTING[k] ?? `the ResourceQuota's ${k}`))].join(", ");
  return new SandboxQuotaExceededError(
    `team ${teamId} is at its sandbox quota, so a new sandbox cannot start (${what} was refused): ${usage} ` +
      `(ResourceQuota ${r.quota} in namespace ${namespace}). Release sandboxes this team no longer needs ` +
      `(a suspended one frees its pod but keeps its workspace volume), or ask the operator to raise ${settings}`,
    { teamId, namespace, quota: r.quota, resource: r.resource, requested: r.requested, used: r.used, limited: r.limited },
  );
}

/** A connection that never opened: the request did not reach any process, so it ran nowhere. */
function neverReached(err: unknown): boolean {
  const code = err instanceof SandboxUnavailableError ? (err.cause as NodeJS.ErrnoException | undefined)?.code : undefined;
  return code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH";
}
