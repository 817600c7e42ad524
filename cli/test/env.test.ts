// Configuration is parsed once, at start: every process exits 2 naming the variable before it
// serves anything, and the worker and the web process build one sandbox-driver config.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sandboxDriverConfig } from "@keel/core/config";
import { WorkerEnvSchema } from "@keel/worker";
import { WebCliEnvSchema, UpEnvSchema } from "../src/env.js";
import { freePort } from "../src/embedded-postgres.js";

const root = path.resolve(import.meta.dirname, "../..");
const keel = path.join(root, "cli/bin/keel.mjs");
const nextBin = path.join(root, "node_modules/next/dist/bin/next");
const serverDir = path.join(root, "server");
const DB = "postgresql://keel@127.0.0.1:1/keel"; // never reached: the process must stop before
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Runs a command to its end; a process that starts serving instead would hang the test (and fail its timeout). */
function run(args: string[], env: Record<string, string>, cwd = root): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd,
      env: { ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

/** Nothing answers on the port: the process stopped before it listened. */
async function nothingListens(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/healthz`).then(
    () => false,
    () => true,
  );
}

describe("a bad value stops the process at start with exit code 2, naming the variable", () => {
  it("keel web (KEEL_SSE_MAX_AGE_MS=abc), before Next starts and before any request", async () => {
    const port = await freePort();
    const r = await run([keel, "web"], { DATABASE_URL: DB, PORT: String(port), KEEL_HOST: "127.0.0.1", KEEL_SSE_MAX_AGE_MS: "abc" });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/keel web: invalid environment\n {2}KEEL_SSE_MAX_AGE_MS: /);
    expect(await nothingListens(port)).toBe(true);
  }, 120_000);

  it("keel web: the admin pair, and KEEL_SANDBOX_DRIVER=kubernetes without KEEL_SANDBOX_IMAGE (cross-field rules)", async () => {
    const r = await run([keel, "web"], {
      DATABASE_URL: DB,
      PORT: String(await freePort()),
      KEEL_ADMIN_EMAIL: "a@example.com",
      KEEL_ADMIN_PASSWORD: "",
      KEEL_SANDBOX_DRIVER: "kubernetes",
      KEEL_SANDBOX_IMAGE: "",
    });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/ {2}KEEL_ADMIN_PASSWORD: set both KEEL_ADMIN_EMAIL and KEEL_ADMIN_PASSWORD, or neither/);
    expect(r.output).toMatch(/ {2}KEEL_SANDBOX_IMAGE: KEEL_SANDBOX_DRIVER=kubernetes needs KEEL_SANDBOX_IMAGE/);
  }, 120_000);

  it("next start (no CLI): instrumentation parses the environment at boot", async () => {
    const port = await freePort();
    const r = await run([nextBin, "start", "-p", String(port), "-H", "127.0.0.1"], { DATABASE_URL: DB, KEEL_SSE_MAX_AGE_MS: "abc" }, serverDir);
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/keel web: invalid environment\n {2}KEEL_SSE_MAX_AGE_MS: /);
    expect(await nothingListens(port)).toBe(true);
  }, 120_000);

  it("keel worker: a secrets key that is not 32 bytes (it used to crash in Secrets' constructor, exit 1 with a stack)", async () => {
    const r = await run([keel, "worker"], { DATABASE_URL: DB, KEEL_SECRETS_KEY: "c2hvcnQ=", KEEL_LEASE_MS: "abc" });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/keel worker: invalid environment\n/);
    expect(r.output).toMatch(/ {2}KEEL_SECRETS_KEY: KEEL_SECRETS_KEY must be 32 bytes/);
    expect(r.output).toMatch(/ {2}KEEL_LEASE_MS: /);
  }, 120_000);

  it("keel up: a web variable and a worker variable are refused before the embedded Postgres starts", async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), "keel-up-env-"));
    dirs.push(dataDir);
    const port = await freePort();
    const r = await run([keel, "up"], {
      DATABASE_URL: "",
      KEEL_DATA_DIR: dataDir,
      KEEL_PG_PORT: String(await freePort()),
      PORT: String(port),
      KEEL_SSE_MAX_AGE_MS: "abc",
      KEEL_MAX_MODEL_CALLS: "0",
    });
    expect(r.code, r.output).toBe(2);
    expect(r.output).toMatch(/keel up: invalid environment\n/);
    expect(r.output).toMatch(/ {2}KEEL_SSE_MAX_AGE_MS: /);
    expect(r.output).toMatch(/ {2}KEEL_MAX_MODEL_CALLS: /);
    expect(await readdir(dataDir)).toEqual([]); // no Postgres data directory, no generated admin
    expect(await nothingListens(port)).toBe(true);
  }, 120_000);
});

const SECRETS_KEY = Buffer.alloc(32, 7).toString("base64");

describe("one sandbox-driver config for the worker and the web process", () => {
  const local = {
    DATABASE_URL: DB,
    KEEL_SANDBOX_DIR: "/srv/keel/sandboxes",
    KEEL_SANDBOX_RUNTIME: "/srv/keel/runtime.mjs",
    KEEL_SANDBOX_EGRESS_INTERNAL: "10.0.0.0/8",
    KEEL_SANDBOX_MIN_FREE_MB: "2048",
    KEEL_ALLOW_UNSANDBOXED: "true",
  };
  const kube = {
    DATABASE_URL: DB,
    KEEL_SANDBOX_DRIVER: "kubernetes",
    KEEL_SECRETS_KEY: SECRETS_KEY,
    KEEL_SANDBOX_IMAGE: "keel-sandbox:1",
    KEEL_SANDBOX_NAMESPACE_PREFIX: "t-",
    KEEL_SANDBOX_WARM_POOL: "2",
    KEEL_SANDBOX_STORAGE_CLASS: "fast",
    KEEL_SANDBOX_IMAGE_PULL_SECRETS: "regcred, other",
    KEEL_SANDBOX_EGRESS_INTERNAL: "10.244.0.0/16",
    KEEL_SANDBOX_RUNTIME_CLASS: "gvisor",
    KEEL_SANDBOX_RUNTIME_CLASSES: "kata, runc",
    KEEL_SANDBOX_NODE_SELECTOR: "keel.dev/sandboxes=true, pool=untrusted",
    KEEL_SANDBOX_TOLERATIONS: "keel.dev/sandboxes=true:NoSchedule, gpu:NoExecute",
    KEEL_SANDBOX_EGRESS_PROXY: "keel-egress:3128",
    KEEL_SANDBOX_WORKERS_NAMESPACE: "keel-platform",
    KEEL_SANDBOX_QUOTA_PODS: "5",
    KEEL_SANDBOX_QUOTA_CPU: "7500m",
    KEEL_SANDBOX_QUOTA_MEMORY_MB: "8192",
    KEEL_SANDBOX_QUOTA_STORAGE_MB: "51200",
    KEEL_SANDBOX_MAX_WORKSPACE_MB: "4096",
    KUBERNETES_SERVICE_HOST: "10.96.0.1",
  };

  it.each([
    ["local", local],
    ["kubernetes", kube],
  ])("%s: the same variables give the same config in keel worker, keel web and keel up", (_, env) => {
    const worker = sandboxDriverConfig(WorkerEnvSchema.parse(env));
    // The web process's config used to leave out the storage class and pull secrets: a sandbox
    // started from the dashboard got a SandboxTemplate of another hash than the worker's.
    expect(sandboxDriverConfig(WebCliEnvSchema.parse(env))).toEqual(worker);
    expect(sandboxDriverConfig(UpEnvSchema.parse(env))).toEqual(worker);
  });

  it("kubernetes: every field reaches the driver", () => {
    expect(sandboxDriverConfig(WorkerEnvSchema.parse(kube))).toEqual({
      driver: "kubernetes",
      image: "keel-sandbox:1",
      namespacePrefix: "t-",
      warmPoolReplicas: 2,
      storageClassName: "fast",
      imagePullSecrets: ["regcred", "other"],
      egressInternalAllow: ["10.244.0.0/16"],
      runtimeClass: "gvisor",
      runtimeClasses: ["kata", "runc"],
      nodeSelector: { "keel.dev/sandboxes": "true", pool: "untrusted" },
      tolerations: [
        { key: "keel.dev/sandboxes", operator: "Equal", value: "true", effect: "NoSchedule" },
        { key: "gpu", operator: "Exists", effect: "NoExecute" },
      ],
      egressProxy: { host: "keel-egress", port: 3128 },
      workersNamespace: "keel-platform",
      priorityClassName: "keel-sandbox",
      // The ones not set keep the defaults (DEFAULT_TEAM_QUOTA).
      teamQuota: { pods: 5, cpu: "7500m", memoryMb: 8192, ephemeralMb: 40_960, pvcs: 40, storageMb: 51_200, maxWorkspaceMb: 4096, maxMemoryMb: 8192 },
      inCluster: true,
      tokenKey: Buffer.from(SECRETS_KEY, "base64"),
    });
  });

  it("kubernetes: a worker without KEEL_SECRETS_KEY is refused (each sandbox's runtime token is derived from it)", () => {
    const { KEEL_SECRETS_KEY: _, ...noKey } = kube;
    const r = WorkerEnvSchema.safeParse(noKey);
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/KEEL_SANDBOX_DRIVER=kubernetes needs KEEL_SECRETS_KEY/);
  });

  it.each([
    ["KEEL_SANDBOX_RUNTIME_CLASS", "gVisor!", /must be a RuntimeClass name/],
    ["KEEL_SANDBOX_NODE_SELECTOR", "pool", /key=value/],
    ["KEEL_SANDBOX_TOLERATIONS", "dedicated=true:Sometimes", /NoSchedule, PreferNoSchedule or NoExecute/],
    ["KEEL_SANDBOX_EGRESS_PROXY", "http://keel-egress", /must be host:port/],
    ["KEEL_SANDBOX_WORKERS_NAMESPACE", "Keel_Platform", /must be a namespace name/],
    ["KEEL_SANDBOX_QUOTA_CPU", "2 cores", /must be a CPU quantity/],
    ["KEEL_SANDBOX_QUOTA_PODS", "-1", /expected number to be >=0/],
    ["KEEL_SANDBOX_PRIORITY_CLASS", "High!", /must be a PriorityClass name/],
  ])("kubernetes: a bad %s is refused with what it must be", (name, value, message) => {
    const r = WorkerEnvSchema.safeParse({ ...kube, [name]: value });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(message);
  });
});
