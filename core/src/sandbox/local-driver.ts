// The local driver: one bubblewrap sandbox per session on this machine, running the sandbox
// runtime, reached over a unix socket in the sandbox's directory.
//
// Continuity: the sandbox is started detached (its own session, no --die-with-parent), so it
// outlives the worker that started it, and a running command survives a worker crash. Any
// worker reattaches by reading sandbox.json (pids + start times, token) and checking /healthz;
// when the runtime is gone (SIGKILL, reboot, suspend) the next acquire starts a new one on the
// same workspace. Exec records and fencing epochs live in the sandbox's state dir (host side,
// passed to the runtime as an fd, out of the commands' reach), so both survive that.
//
// The runtime socket is made by this process in <sandbox>/host/ (0700, ours) and handed to the
// runtime as an fd; clients connect there and check it is a socket we own (runtime-client.ts).
//
// Egress: every sandbox has its own empty network namespace (loopback only). Policy 'none' → that
// is all. {allow: [...]} → a host-side egress proxy per sandbox (local-egress.ts) on a unix socket
// bound into the sandbox; the runtime forwards 127.0.0.1:3128 to it and sets HTTP(S)_PROXY, and
// the proxy opens only the allowed hosts and ports (403 with the reason otherwise). A program
// that ignores the proxy variables reaches nothing.
import { randomBytes, randomUUID, createHash } from "node:crypto";
import { chmodSync, closeSync, mkdirSync, openSync } from "node:fs";
import { chmod, chown, mkdir, open, readFile, readdir, rm, writeFile, rename } from "node:fs/promises";
import path from "node:path";
import { spawnSync } from "node:child_process";
import type { Logger } from "../logger.js";
import { silentLogger } from "../logger.js";
import { bwrapArgs, bwrapProblem, INSIDE, passwdFiles, procMaskFiles } from "./bwrap.js";
import type { DriverHealth, ExecRequest, ExecResult, Fence, SandboxDriver, SandboxHandle, SandboxInfo, SandboxSecrets, SandboxState } from "./driver.js";
import { SandboxUnavailableError } from "./errors.js";
import { parseEgressAllowList } from "./egress.js";
import { canUseImages, checkFreeSpace, ImagePool, markDiskFull, mountImage, unmountImage, workspaceFullError } from "./disk-quota.js";
import { DEFAULT_MAX_LOG_BYTES, rotateLog } from "@keel/sandbox/log-file";
import { execWithOomCheck, limitMemory, MemoryCgroups } from "./cgroup.js";
import { egressDir, egressRulesOf, launchEgressProxy, waitForEgressProxy } from "./local-egress.js";
import { installExecOnly, installRuntime, isSameProcessAlive, killProcess, launchDetached, listenForChild, sleep, withLockFile } from "./local-process.js";
import { chownTree, claimUid, DEFAULT_UID_RANGE, releaseUid, type UidRange } from "./local-uids.js";
import { seccompProgram } from "./seccomp.js";
import type { SandboxPolicy } from "./policy.js";
import { RuntimeClient } from "./runtime-client.js";
import type { SandboxStore } from "./store.js";

export type LocalDriverOptions = {
  /** e.g. <dataDir>/sandboxes; each sandbox lives in <baseDir>/<teamId>/<sessionId>/. */
  baseDir: string;
  /** The bundled runtime (sandbox/dist/runtime.mjs); copied under baseDir on first use. */
  runtimeScript: string;
  /** The bundled egress proxy; default egress-proxy.mjs beside runtimeScript (both built by `npm run setup`). */
  egressProxyScript?: string;
  /**
   * Static name → address map the egress proxies consult before DNS, trusted like /etc/hosts
   * (a name mapped here may point at loopback). For split-horizon setups and tests.
   */
  egressHosts?: Record<string, string>;
  /**
   * Internal ranges (egress grammar: addresses, CIDRs, optional :port) the operator lets team
   * allow-lists reach. Without them no sandbox reaches loopback, link-local (metadata), private,
   * CGNAT, ULA, NAT64 or this host's own addresses through its proxy (internal-addresses.ts).
   */
  egressInternalAllow?: string[];
  store?: SandboxStore;
  /** Run the runtime without bubblewrap when bwrap is missing: NO isolation. Operator opt-in. */
  allowUnsandboxed?: boolean;
  bwrapPath?: string;
  nodePath?: string;
  /**
   * When this process is root, each sandbox (and its egress proxy) runs as its own host uid
   * (= gid) from this range (default DEFAULT_UID_RANGE): RLIMIT_NPROC never applies to root,
   * and a shared uid would let one sandbox's processes read another's files and memory.
   */
  uidRange?: UidRange;
  /** One fixed host uid/gid for every sandbox instead of the range (tests, single-tenant setups). */
  hostUid?: number;
  hostGid?: number;
  startTimeoutMs?: number;
  /**
   * A memory cgroup per sandbox (cgroup.ts) when the host allows one; false: rlimits only. The
   * sandbox's total memory, its runtime and tmpfs pages included, is then policy memoryMb.
   */
  memoryCgroups?: boolean;
  /**
   * Each workspace its own loop-mounted ext4 image of policy workspaceMb (disk-quota.ts) when this
   * process is root; false: plain directories, no size limit.
   */
  workspaceImages?: boolean;
  /** No new sandbox when the disk under baseDir has less free space than this, MB (0: no floor). */
  minFreeDiskMb?: number;
  /** Log cap, bytes: runtime.log is rotated at start (one old copy), egress.log truncated by its proxy. */
  maxLogBytes?: number;
  /** A file call (read, write, list) the runtime has not answered by then fails (503) instead of hanging the caller. */
  fileTimeoutMs?: number;
  logger?: Logger;
};

type Persisted = {
  sandboxId: string;
  teamId: string;
  sessionId: string;
  state: SandboxState;
  createdAt: number;
  lastActiveAt: number;
  idleTimeoutMs: number;
  ttlMs: number;
  configHash?: string;
  lastError?: string;
  unsandboxed?: boolean;
  pid?: number;
  pidStartTime?: string;
  childPid?: number;
  childStartTime?: string;
  egressPid?: number;
  egressStartTime?: string;
  /** The sandbox's memory cgroup (cgroup.ts), removed when it stops. */
  cgroup?: string;
  /** The workspace is an ext4 image (disk-quota.ts), mounted while the sandbox runs. */
  workspaceImage?: boolean;
  /** The host uid this sandbox runs as (from uidRange), when Keel runs as root. */
  uid?: number;
};

/** Layout of the fds bwrap gets: 3 info, 4 args, then these (the runtime sees the last two). */
const BWRAP_FDS = { seccomp: 5, listen: 6, state: 7 } as const;

const ID = /^[A-Za-z0-9_-]{1,64}$/;

export class LocalSandboxDriver implements SandboxDriver {
  readonly name = "local";
  private readonly opts: Required<Pick<LocalDriverOptions, "startTimeoutMs" | "bwrapPath" | "nodePath">> & LocalDriverOptions;
  private readonly log: Logger;
  private readonly inProcess = new Map<string, Promise<unknown>>();
  private bwrapOk: boolean | undefined;
  private runtimeCopy: string | undefined;
  private egressCopy: string | undefined;
  private readonly cgroups: MemoryCgroups | undefined;
  private readonly images: ImagePool;
  private nodeCopy: string | undefined;
  private shellCopy: string | undefined;
  private seccomp: Buffer | undefined;

  constructor(opts: LocalDriverOptions) {
    const root = process.getuid?.() === 0;
    this.opts = {
      startTimeoutMs: 10_000,
      bwrapPath: "bwrap",
      nodePath: process.execPath,
      ...(root && opts.hostUid === undefined ? { uidRange: DEFAULT_UID_RANGE } : {}),
      ...opts,
    };
    this.log = opts.logger ?? silentLogger;
    this.cgroups = opts.memoryCgroups === false ? undefined : new MemoryCgroups();
    this.images = new ImagePool(path.join(opts.baseDir, ".images"));
    // The sandbox's uid must traverse baseDir to reach its own directory (listing stays closed).
    mkdirSync(opts.baseDir, { recursive: true });
    chmodSync(opts.baseDir, 0o711);
  }

  async health(): Promise<DriverHealth> {
    const why = bwrapProblem(this.opts.bwrapPath, this.opts.uidRange ? { uid: 65534, gid: 65534 } : this.uidOpts());
    this.bwrapOk = why === undefined;
    if (this.bwrapOk) return { ok: true, driver: this.name, message: "bubblewrap works" };
    return {
      ok: this.opts.allowUnsandboxed === true,
      driver: this.name,
      message: this.opts.allowUnsandboxed ? `${why}; running UNSANDBOXED (allowUnsandboxed)` : why!,
    };
  }

  async acquire(sessionId: string, teamId: string, policy: SandboxPolicy, secrets: SandboxSecrets = {}): Promise<SandboxHandle> {
    if (!ID.test(sessionId) || !ID.test(teamId)) throw new SandboxUnavailableError("invalid team or session id for a sandbox");
    return this.serialized(`${teamId}/${sessionId}`, () =>
      withLockFile(path.join(this.teamDir(teamId), `${sessionId}.lock`), this.opts.startTimeoutMs + 5_000, async () => {
        let rec = await this.read(teamId, sessionId);
        const configHash = createHash("sha256")
          .update(
            JSON.stringify([policy.resources, policy.egress, this.opts.egressHosts ?? {}, this.opts.egressInternalAllow ?? [], Object.entries(secrets).sort()]),
          )
          .digest("hex");
        if (!rec || rec.state === "terminated") {
          checkFreeSpace(this.opts.baseDir, this.opts.minFreeDiskMb ?? 1024);
          rec = await this.create(teamId, sessionId, policy);
        }
        rec.idleTimeoutMs = policy.idleTimeoutMs;
        rec.ttlMs = policy.ttlMs;
        const client = await this.client(rec);
        const egressAlive = rec.egressPid === undefined || isSameProcessAlive(rec.egressPid, rec.egressStartTime);
        const alive =
          egressAlive &&
          isSameProcessAlive(rec.childPid, rec.childStartTime) &&
          (await client.health().then(
            () => true,
            () => false,
          ));
        if (!alive || rec.configHash !== configHash || rec.state !== "ready") await this.start(rec, policy, secrets, configHash);
        rec.lastActiveAt = Date.now();
        await this.save(rec);
        // The next new workspace's image, made now that this sandbox is ready (off the acquire path).
        if (rec.workspaceImage)
          this.images.refill(policy.resources.workspaceMb, (err) => this.log.warn({ err: err.message }, "spare workspace image not made"));
        return this.handle(rec);
      }),
    );
  }

  async exec(h: SandboxHandle, req: ExecRequest): Promise<ExecResult> {
    return this.withRuntime(h, async (c, rec) => {
      const run = () => c.exec(req).catch((err: unknown) => Promise.reject(workspaceFullError(err)));
      return markDiskFull(await (rec.cgroup && this.cgroups ? execWithOomCheck(this.cgroups, rec.cgroup, run) : run()));
    });
  }
  async readFile(h: SandboxHandle, p: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}) {
    return this.fileCall(h, opts.signal, (c, signal) => c.readFile(p, { ...opts, signal }));
  }
  async writeFile(h: SandboxHandle, p: string, content: string, opts: Fence & { encoding?: "utf8" | "base64" } = {}) {
    return this.fileCall(h, undefined, (c, signal) => c.writeFile(p, content, { ...opts, signal }));
  }
  async listFiles(h: SandboxHandle, p: string, opts: { recursive?: boolean; maxEntries?: number; signal?: AbortSignal } = {}) {
    return this.fileCall(h, opts.signal, (c, signal) => c.listFiles(p, { ...opts, signal }));
  }

  /** A file call bounded by fileTimeoutMs: a runtime stuck on a file never hangs a worker or a page. */
  private async fileCall<T>(h: SandboxHandle, signal: AbortSignal | undefined, fn: (c: RuntimeClient, signal: AbortSignal) => Promise<T>): Promise<T> {
    const ms = this.opts.fileTimeoutMs ?? 30_000;
    const timeout = AbortSignal.timeout(ms);
    return this.withRuntime(h, (c) => fn(c, signal ? AbortSignal.any([signal, timeout]) : timeout)).catch((err: unknown) => {
      if (timeout.aborted && !signal?.aborted)
        throw new SandboxUnavailableError(`the sandbox runtime did not answer a file call within ${ms} ms`, { sandboxId: h.sandboxId }, { cause: err });
      throw err;
    });
  }

  async suspend(h: SandboxHandle): Promise<void> {
    await this.transition(h, "suspended", async (rec) => {
      await this.stop(rec);
      if (rec.workspaceImage) await unmountImage(this.sandboxDir(rec.teamId, rec.sessionId));
    });
  }

  async resume(h: SandboxHandle, policy: SandboxPolicy, secrets: SandboxSecrets = {}): Promise<void> {
    const rec = await this.read(h.teamId, h.sessionId);
    if (!rec || rec.sandboxId !== h.sandboxId || rec.state === "terminated") throw new SandboxUnavailableError("the sandbox was terminated; acquire a new one");
    await this.acquire(h.sessionId, h.teamId, policy, secrets);
  }

  async release(h: SandboxHandle): Promise<void> {
    await this.transition(h, "terminated", async (rec) => {
      await this.stop(rec);
      if (rec.workspaceImage) await unmountImage(this.sandboxDir(rec.teamId, rec.sessionId));
      await rm(this.sandboxDir(rec.teamId, rec.sessionId), { recursive: true, force: true });
      await releaseUid(this.opts.baseDir, rec.uid);
    });
  }

  async list(filter: { teamId?: string } = {}): Promise<SandboxInfo[]> {
    const out: SandboxInfo[] = [];
    const teams = filter.teamId ? [filter.teamId] : await readdir(this.opts.baseDir).catch(() => [] as string[]);
    for (const teamId of teams.filter((t) => ID.test(t))) {
      for (const sessionId of (await readdir(this.teamDir(teamId)).catch(() => [] as string[])).filter((s) => ID.test(s))) {
        const rec = await this.read(teamId, sessionId);
        if (!rec) continue;
        let lastActiveAt = rec.lastActiveAt;
        let inFlight: number | undefined;
        // The runtime's idle clock counts calls from every worker on this machine, and a
        // command still running counts as activity.
        if (rec.state === "ready") {
          const h = await (await this.client(rec)).health({ timeoutMs: 1_000 }).catch(() => undefined);
          if (h) lastActiveAt = Math.max(lastActiveAt, Date.now() - h.idleMs);
          inFlight = h?.inFlight;
        }
        out.push({
          ...this.handle(rec),
          state: rec.state,
          createdAt: new Date(rec.createdAt),
          lastActiveAt: new Date(lastActiveAt),
          idleTimeoutMs: rec.idleTimeoutMs,
          ttlMs: rec.ttlMs,
          ...(inFlight !== undefined ? { inFlight } : {}),
          ...(rec.lastError ? { lastError: rec.lastError } : {}),
        });
      }
    }
    return out;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────

  private async start(rec: Persisted, policy: SandboxPolicy, secrets: SandboxSecrets, configHash: string): Promise<void> {
    await this.stop(rec);
    await this.setState(rec, "provisioning");
    try {
      if (this.bwrapOk === undefined) await this.health();
      if (!this.bwrapOk && !this.opts.allowUnsandboxed) {
        throw new Error(
          `bubblewrap is unavailable, so commands cannot be isolated: ${(await this.health()).message}. Install it, or set allowUnsandboxed to run them without isolation`,
        );
      }
      const dir = this.sandboxDir(rec.teamId, rec.sessionId);
      await this.prepareDirs(rec);
      const rules = egressRulesOf(policy);
      // Unsandboxed there is no namespace to keep closed: commands have the host network anyway.
      if (rules && !this.bwrapOk) this.log.warn({ teamId: rec.teamId, sessionId: rec.sessionId }, "egress allow-list not enforced: running unsandboxed");
      const egress =
        rules && this.bwrapOk
          ? await launchEgressProxy({
              sandboxDir: dir,
              proxyScript: this.egressProxy(),
              nodePath: this.node(),
              rules,
              hosts: this.opts.egressHosts ?? {},
              internal: parseEgressAllowList(this.opts.egressInternalAllow ?? []),
              maxLogBytes: this.opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES,
              ...this.uidOpts(rec),
            })
          : undefined;
      delete rec.egressPid;
      delete rec.egressStartTime;
      if (egress) Object.assign(rec, egress);
      await this.save(rec);
      const stdin = JSON.stringify({
        token: await readFile(path.join(dir, "token"), "utf8"),
        env: { PATH: "/usr/local/bin:/usr/bin:/bin", HOME: INSIDE.workspace, LANG: "C.UTF-8", ...secrets },
        // With a memory cgroup the address-space limit is only a backstop (sandbox/src/exec.ts).
        limits: { ...policy.resources, memoryInGroup: Boolean(this.bwrapOk && this.cgroups?.probe().ok) },
        ...(egress ? { egress: { socket: INSIDE.egressSocket, port: INSIDE.egressPort } } : {}),
      });
      if (rec.workspaceImage) await mountImage(dir, this.owner(rec));
      await rotateLog(path.join(dir, "runtime.log"), this.opts.maxLogBytes ?? DEFAULT_MAX_LOG_BYTES);
      const launched = await this.launch(rec, stdin, policy, egress !== undefined);
      Object.assign(rec, { ...launched, unsandboxed: !this.bwrapOk, configHash });
      // Before the runtime answers, so no command of the team's runs outside the group.
      if (this.bwrapOk && this.cgroups) limitMemory(this.cgroups, rec, policy.resources.memoryMb, this.log);
      await this.save(rec);
      const client = await this.client(rec);
      const deadline = Date.now() + this.opts.startTimeoutMs;
      while (
        !(await client.health({ timeoutMs: 1_000 }).then(
          () => true,
          () => false,
        ))
      ) {
        if (!isSameProcessAlive(rec.childPid, rec.childStartTime)) throw new Error(`the sandbox runtime exited at start: ${await this.logTail(rec)}`);
        if (Date.now() > deadline) throw new Error(`the sandbox runtime did not answer within ${this.opts.startTimeoutMs} ms: ${await this.logTail(rec)}`);
        await sleep(10);
      }
      if (egress) await waitForEgressProxy(dir, egress, Math.max(1_000, deadline - Date.now()));
      delete rec.lastError;
      await this.setState(rec, "ready");
      this.log.info({ teamId: rec.teamId, sessionId: rec.sessionId, sandboxId: rec.sandboxId, unsandboxed: rec.unsandboxed }, "sandbox started");
    } catch (err) {
      rec.lastError = (err as Error).message;
      await this.stop(rec).catch(() => {});
      await this.setState(rec, "failed");
      throw new SandboxUnavailableError(`the sandbox could not start: ${(err as Error).message}`, { sandboxId: rec.sandboxId }, { cause: err });
    }
  }

  /**
   * Starts bwrap (or, unsandboxed, the runtime itself) with the listening socket and the state
   * dir as fds, the bwrap arguments and the seccomp program on pipes, and nothing else open.
   */
  private async launch(rec: Persisted, stdin: string, policy: SandboxPolicy, egress: boolean) {
    const dir = this.sandboxDir(rec.teamId, rec.sessionId);
    const socket = listenForChild(path.join(dir, "host"), "runtime.sock");
    const stateFd = openSync(path.join(dir, "state"), "r");
    const log = await open(path.join(dir, "runtime.log"), "a", 0o600);
    try {
      const common = { stdin, logFd: log.fd, cwd: dir, ...this.uidOpts(rec) };
      const args = this.bwrapOk ? this.bwrapArgs(rec, policy, egress) : { options: [], command: [] };
      const launched = await (
        this.bwrapOk
          ? launchDetached(this.opts.bwrapPath, ["--info-fd", "3", "--args", "4", "--", ...args.command], {
              ...common,
              fds: ["info", { data: `${args.options.join("\0")}\0` }, { data: (this.seccomp ??= seccompProgram()) }, socket.fd, stateFd],
            })
          : launchDetached(this.node(), [this.runtime(), "--listen-fd", "3", "--state-fd", "4", "--workspace", path.join(dir, "workspace"), "--config-stdin"], {
              ...common,
              fds: [socket.fd, stateFd],
            })
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${await this.logTail(rec)}`);
      });
      socket.publish();
      return launched;
    } finally {
      socket.close();
      closeSync(stateFd);
      await log.close();
    }
  }

  /**
   * The execute-only copy of node (installExecOnly) every process started as a sandbox's uid runs:
   * the runtime, its egress proxy, and what commands see at node's own path. The original may sit
   * where that uid cannot reach it (a node under /root: nvm, or the one `npm start` fetches).
   */
  private node(): string {
    return (this.nodeCopy ??= installExecOnly(this.opts.baseDir, this.opts.nodePath, "node"));
  }

  private bwrapArgs(rec: Persisted, policy: SandboxPolicy, egress: boolean): { options: string[]; command: string[] } {
    const dir = this.sandboxDir(rec.teamId, rec.sessionId);
    this.shellCopy ??= installExecOnly(this.opts.baseDir, "/bin/sh", "init-sh");
    return bwrapArgs({
      workspaceDir: path.join(dir, "workspace"),
      etcDir: path.join(dir, "etc"),
      runtimeScript: this.runtime(),
      runtimeNode: this.node(),
      initShell: this.shellCopy,
      nodePath: this.opts.nodePath,
      ...(egress ? { egressDir: egressDir(dir) } : {}),
      // A quarter of the memory each: tmpfs pages count toward the sandbox's memory cgroup, so a
      // full /tmp plus /dev/shm (half) fails with ENOSPC before the group's OOM killer has to pick
      // (it could pick the runtime). Equal to memoryMb, filling /tmp killed the runtime.
      tmpSizeMb: Math.max(1, Math.min(Math.floor(policy.resources.memoryMb / 4), 1024)),
      fds: BWRAP_FDS,
    });
  }

  private async stop(rec: Persisted): Promise<void> {
    // The PID-namespace init first: its death kills every process in the sandbox.
    await killProcess(rec.childPid, rec.childStartTime);
    await killProcess(rec.pid, rec.pidStartTime);
    await killProcess(rec.egressPid, rec.egressStartTime);
    if (rec.cgroup && this.cgroups) {
      await this.cgroups
        .remove(rec.cgroup)
        .catch((err: Error) => this.log.warn({ sandboxId: rec.sandboxId, cgroup: rec.cgroup, err: err.message }, "sandbox memory cgroup not removed"));
      delete rec.cgroup;
    }
  }

  private async create(teamId: string, sessionId: string, policy: SandboxPolicy): Promise<Persisted> {
    const dir = this.sandboxDir(teamId, sessionId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o711 });
    await writeFile(path.join(dir, "token"), randomBytes(32).toString("base64url"), { mode: 0o600 });
    const now = Date.now();
    const rec: Persisted = {
      sandboxId: randomUUID(),
      teamId,
      sessionId,
      state: "requested",
      createdAt: now,
      lastActiveAt: now,
      idleTimeoutMs: policy.idleTimeoutMs,
      ttlMs: policy.ttlMs,
    };
    await this.prepareDirs(rec);
    if (await this.imagesUsable()) {
      await this.images.take(dir, policy.resources.workspaceMb);
      rec.workspaceImage = true;
    }
    await this.setState(rec, "requested");
    return rec;
  }

  /**
   * The sandbox dir's layout, also for a sandbox made by an older Keel (run/ and a shared uid):
   * workspace/ and state/ belong to the sandbox's uid, host/ (the socket) and the token to us.
   * An old workspace's .keel ledger stays where it was and is never read again: commands could
   * write it, so its records cannot be trusted (a re-sent call from before the upgrade runs anew).
   */
  private async prepareDirs(rec: Persisted): Promise<void> {
    const dir = this.sandboxDir(rec.teamId, rec.sessionId);
    for (const d of ["workspace", "state", "etc"]) await mkdir(path.join(dir, d), { recursive: true, mode: 0o700 });
    await mkdir(path.join(dir, "host"), { recursive: true, mode: 0o700 });
    await chmod(path.join(dir, "host"), 0o700);
    await rm(path.join(dir, "run"), { recursive: true, force: true });
    const pw = passwdFiles();
    const etc: Record<string, string> = { passwd: pw.passwd, group: pw.group, ...procMaskFiles() };
    for (const [name, text] of Object.entries(etc)) await writeFile(path.join(dir, "etc", name), text, { mode: 0o644 });
    // The sandbox's own uid must reach its workspace, state and etc; nothing else of ours.
    await chmod(dir, 0o711);
    await chmod(path.join(dir, "etc"), 0o755);
    const claim = rec.uid === undefined && this.opts.uidRange !== undefined;
    if (claim) rec.uid = await claimUid(this.opts.baseDir, this.opts.uidRange!, rec.teamId, rec.sessionId, async (t, s) => (await this.read(t, s))?.uid);
    const ids = this.uidOpts(rec);
    if (ids.uid === undefined) return;
    // A new uid for an existing workspace (made before per-sandbox uids): hand its files over.
    if (claim) await chownTree(path.join(dir, "workspace"), ids.uid, ids.gid!);
    for (const d of ["workspace", "state"]) await chown(path.join(dir, d), ids.uid, ids.gid!);
  }

  private async withRuntime<T>(h: SandboxHandle, fn: (c: RuntimeClient, rec: Persisted) => Promise<T>): Promise<T> {
    const rec = await this.read(h.teamId, h.sessionId);
    if (!rec || rec.sandboxId !== h.sandboxId || rec.state !== "ready")
      throw new SandboxUnavailableError(`the sandbox is ${rec?.sandboxId === h.sandboxId ? rec.state : "gone"}; acquire it again`);
    return fn(await this.client(rec), rec);
  }

  private async transition(h: SandboxHandle, to: SandboxState, fn: (rec: Persisted) => Promise<void>): Promise<void> {
    await this.serialized(`${h.teamId}/${h.sessionId}`, () =>
      withLockFile(path.join(this.teamDir(h.teamId), `${h.sessionId}.lock`), this.opts.startTimeoutMs + 5_000, async () => {
        const rec = await this.read(h.teamId, h.sessionId);
        if (!rec || rec.sandboxId !== h.sandboxId || rec.state === "terminated") return;
        await fn(rec);
        await this.setState(rec, to);
      }),
    );
  }

  private async setState(rec: Persisted, state: SandboxState): Promise<void> {
    rec.state = state;
    if (state !== "terminated") await this.save(rec);
    await this.opts.store?.record({
      id: rec.sandboxId,
      teamId: rec.teamId,
      sessionId: rec.sessionId,
      driver: this.name,
      state,
      lastError: rec.lastError ?? null,
      lastActiveAt: new Date(rec.lastActiveAt),
    });
  }

  private serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.inProcess.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.inProcess.set(
      key,
      next.catch(() => {}),
    );
    return next;
  }

  private handle(rec: Persisted): SandboxHandle {
    return { sandboxId: rec.sandboxId, teamId: rec.teamId, sessionId: rec.sessionId, driver: this.name };
  }

  private async client(rec: Persisted): Promise<RuntimeClient> {
    const dir = this.sandboxDir(rec.teamId, rec.sessionId);
    // Only a socket we made counts: never a path anything else could have put there.
    return new RuntimeClient(
      { socketPath: path.join(dir, "host", "runtime.sock"), socketOwner: process.getuid?.() },
      await readFile(path.join(dir, "token"), "utf8"),
    );
  }

  private async read(teamId: string, sessionId: string): Promise<Persisted | undefined> {
    const text = await readFile(path.join(this.sandboxDir(teamId, sessionId), "sandbox.json"), "utf8").catch(() => undefined);
    return text ? (JSON.parse(text) as Persisted) : undefined;
  }

  private async save(rec: Persisted): Promise<void> {
    const file = path.join(this.sandboxDir(rec.teamId, rec.sessionId), "sandbox.json");
    await writeFile(`${file}.tmp`, JSON.stringify(rec), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  private async logTail(rec: Persisted): Promise<string> {
    const text = await readFile(path.join(this.sandboxDir(rec.teamId, rec.sessionId), "runtime.log"), "utf8").catch(() => "");
    return text.trim().split("\n").slice(-5).join(" | ") || "(no output)";
  }

  private runtime(): string {
    this.runtimeCopy ??= installRuntime(this.opts.baseDir, this.opts.runtimeScript);
    return this.runtimeCopy;
  }

  private egressProxy(): string {
    const script = this.opts.egressProxyScript ?? path.join(path.dirname(this.opts.runtimeScript), "egress-proxy.mjs");
    this.egressCopy ??= installRuntime(this.opts.baseDir, script, "egress-proxy");
    return this.egressCopy;
  }

  private owner(rec: Persisted): { uid: number; gid: number } {
    const ids = this.uidOpts(rec);
    const uid = ids.uid ?? process.getuid!();
    return { uid, gid: ids.gid ?? uid };
  }

  private imagesChecked: Promise<boolean> | undefined;
  private imagesUsable(): Promise<boolean> {
    if (this.opts.workspaceImages === false) return Promise.resolve(false);
    this.imagesChecked ??= canUseImages().then((r) => {
      if (!r.ok) this.log.warn({ reason: r.reason }, "no workspace images: sandbox workspaces have no size limit");
      return r.ok;
    });
    return this.imagesChecked;
  }

  private uidOpts(rec?: Persisted): { uid?: number; gid?: number } {
    if (this.opts.hostUid !== undefined) return { uid: this.opts.hostUid, gid: this.opts.hostGid ?? this.opts.hostUid };
    return rec?.uid === undefined ? {} : { uid: rec.uid, gid: rec.uid };
  }

  private sandboxDir(teamId: string, sessionId: string): string {
    return path.join(this.teamDir(teamId), sessionId);
  }

  private teamDir(teamId: string): string {
    const d = path.join(this.opts.baseDir, teamId);
    mkdirSync(d, { recursive: true, mode: 0o711 });
    return d;
  }
}
