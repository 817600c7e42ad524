// The session view's sandbox panel in a real browser, and its REST API: the built web process
// reads sandboxes through the same local driver (real bubblewrap) as an in-process worker whose
// demo model calls write_file. Empty state, file list and content, binary and large files, a
// suspended sandbox shown without waking it, then started on request; 404 for another team,
// 403 for a viewer's start, 400/404/409/422 for bad paths and states.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import {
  Accounts,
  builtinTools,
  createAgentStep,
  createModelResolver,
  createPool,
  createSandboxTools,
  LocalSandboxDriver,
  notifyDeltas,
  SandboxStore,
  Secrets,
  sessionPolicyResolver,
  silentLogger,
  ToolRegistry,
  Worker,
  type Pool,
} from "@keel/core";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { useSandboxEnv } from "@keel/core/testing/sandbox";
import { ADMIN, ensureBuild, startServer, type RunningServer } from "./harness.js";
import { launchChromium, screenshot } from "./e2e-helpers.js";

const SECRETS_KEY = Buffer.alloc(32, 7).toString("base64"); // the harness's web key
const env = useSandboxEnv();
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: Pool;
let server: RunningServer;
let worker: Worker;
let driver: LocalSandboxDriver;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let adminKey = "";
let teamId = "";
let agentId = "";
let sessionId = "";

async function call(p: string, o: { key?: string; method?: string } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url}${p}`, { method: o.method ?? "GET", headers: { authorization: `Bearer ${o.key ?? adminKey}` } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  const build = ensureBuild();
  if (build.rebuilt) console.log(`next build took ${build.ms} ms`);
  db = await createTestDatabase();
  pool = createPool(db.url, { max: 8 });
  server = await startServer(db.url, { KEEL_SANDBOX_DIR: env.baseDir, KEEL_SANDBOX_RUNTIME: env.runtimeScript });
  driver = env.driver({ store: new SandboxStore(pool) });
  const tools = createSandboxTools(driver, sessionPolicyResolver(pool, new Secrets({ pool, keyBase64: SECRETS_KEY })));
  const step = createAgentStep({
    pool,
    logger: silentLogger,
    tools: new ToolRegistry([...builtinTools, ...tools]),
    models: createModelResolver({}),
    onDelta: notifyDeltas(pool),
  });
  worker = new Worker({ pool, connectionString: db.url, step, logger: silentLogger, leaseMs: 5_000, pollMs: 200, sweepMs: 50 });
  await worker.start();
  browser = await launchChromium();
  context = await browser.newContext({ baseURL: server.url, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  const login = await page.request.post("/api/v1/auth/login", { data: ADMIN });
  expect(login.status()).toBe(200);
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const key = await page.request.post("/api/v1/api-keys", { data: { name: "tests", role: "admin" }, headers: { "x-csrf-token": csrfToken } });
  adminKey = ((await key.json()) as { key: string }).key;
  teamId = (await call("/api/v1/me")).body.teamId;
  const agent = await page.request.post("/api/v1/agents", {
    headers: { "x-csrf-token": csrfToken },
    data: {
      name: "filer",
      model: "demo",
      tools: ["write_file", "read_file", "list_files"],
      sandboxPolicy: { egress: { allow: ["api.example.com", "*.github.com:443"] }, secrets: ["GITHUB_TOKEN"], idleTimeoutMs: 600_000 },
    },
  });
  expect(agent.status()).toBe(201);
  agentId = ((await agent.json()) as { id: string }).id;
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop({ drainMs: 1_000 });
  await server?.stop();
  await pool?.end();
  await db?.drop();
});

async function newSession(): Promise<string> {
  const r = await fetch(`${server.url}/api/v1/sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ agentId }),
  });
  expect(r.status).toBe(201);
  return ((await r.json()) as { id: string }).id;
}

const panel = () => page.getByTestId("sandbox");
const fileRow = (p: string) => panel().locator(`tr[data-file="${p}"]`);

describe.sequential("session view: the sandbox", () => {
  test("before the agent used a sandbox tool: an empty state and the policy", async () => {
    sessionId = await newSession();
    await page.goto(`/sessions/${sessionId}`);
    await panel().getByText("No sandbox yet").waitFor();
    const policy = await page.getByTestId("sandbox-policy").textContent();
    expect(policy).toContain("Egress: only api.example.com, *.github.com:443");
    expect(policy).toContain("secrets: GITHUB_TOKEN");
    expect(policy).toContain("suspends after 10 min idle");
    expect(await panel().getByTestId("sandbox-files").count()).toBe(0);
  });

  test("the agent writes a file with write_file; the view shows it, its size and its content", async () => {
    await page.getByLabel("message", { exact: true }).fill('write "hello from the agent" to notes/hello.txt');
    await page.getByLabel("message", { exact: true }).press("Enter");
    await page.locator('[data-type="tool_result"]').filter({ hasText: "sizeBytes" }).waitFor();
    await page.getByTestId("sandbox-state").filter({ hasText: "ready" }).waitFor();
    await fileRow("notes").getByRole("link", { name: "notes/" }).click();
    const row = fileRow("notes/hello.txt");
    await row.waitFor();
    expect(await row.textContent()).toContain("20 B");
    await row.getByRole("link", { name: "hello.txt" }).click();
    expect(await page.getByTestId("file-content").textContent()).toBe("hello from the agent");
    expect(await page.getByTestId("file-view").textContent()).toContain("read-only");
    // What the page shows is what is on disk in the sandbox's workspace.
    expect(await readFile(path.join(env.baseDir, teamId, sessionId, "workspace/notes/hello.txt"), "utf8")).toBe("hello from the agent");
    await screenshot(page, "sandbox-view-file");
  });

  test("binary files and large files are shown with a clear note", async () => {
    const h = (await driver.list({ teamId })).find((s) => s.sessionId === sessionId)!;
    await driver.writeFile(h, "notes/image.bin", Buffer.from([0, 1, 2, 255, 254, 0, 7]).toString("base64"), { encoding: "base64" });
    await driver.writeFile(h, "notes/big.log", "x".repeat(300 * 1024));
    await panel().getByRole("button", { name: "Refresh" }).click();
    await fileRow("notes/image.bin").getByRole("link").click();
    expect(await page.getByTestId("file-note").textContent()).toBe("Binary file (7 B): not shown.");
    expect(await page.getByTestId("file-content").count()).toBe(0);
    await fileRow("notes/big.log").getByRole("link").click();
    await page.getByTestId("file-note").filter({ hasText: "Large file" }).waitFor();
    expect(await page.getByTestId("file-note").textContent()).toBe("Large file: showing the first 256.0 KiB of 300.0 KiB.");
    expect((await page.getByTestId("file-content").textContent())!.length).toBe(256 * 1024);
  });

  test("a suspended sandbox says so and is not woken by looking; Start sandbox wakes it", async () => {
    const h = (await driver.list({ teamId })).find((s) => s.sessionId === sessionId)!;
    await driver.suspend(h);
    await page.reload();
    await page.getByTestId("sandbox-state").filter({ hasText: "suspended" }).waitFor();
    expect(await page.getByTestId("sandbox-note").textContent()).toMatch(/suspended \(idle\): it is not running/);
    expect(await panel().getByTestId("sandbox-files").count()).toBe(0);
    const files = await call(`/api/v1/sessions/${sessionId}/sandbox/files`);
    expect(files.status).toBe(409);
    expect(files.body.error).toMatchObject({ code: "sandbox_not_running", details: { state: "suspended" } });
    // Looking (page and API) left it suspended, its runtime not running.
    expect((await env.record(teamId, sessionId)).state).toBe("suspended");
    expect(await env.runtimeProcesses()).toEqual([]);

    await panel().getByRole("button", { name: "Start sandbox" }).click();
    await page.getByTestId("sandbox-state").filter({ hasText: "ready" }).waitFor();
    await fileRow("notes").getByRole("link", { name: "notes/" }).click();
    await fileRow("notes/hello.txt").waitFor(); // the same workspace, resumed
    expect((await env.record(teamId, sessionId)).state).toBe("ready");
  });
});

describe("session sandbox API", () => {
  test("bad paths and states: 400, 404, 409, 422 with JSON errors, never a 5xx", async () => {
    const s = `/api/v1/sessions/${sessionId}/sandbox`;
    const cases: [string, number, string][] = [
      [`${s}/file?path=${encodeURIComponent("../../etc/passwd")}`, 400, "path_outside_workspace"],
      [`${s}/files?path=${encodeURIComponent("/etc")}`, 400, "path_outside_workspace"],
      [`${s}/file?path=${encodeURIComponent(".keel/fences.json")}`, 400, "path_reserved"],
      [`${s}/file?path=notes`, 400, "is_directory"],
      [`${s}/file?path=missing.txt`, 404, "not_found"],
      [`${s}/files?path=nowhere`, 404, "not_found"],
      [`${s}/file`, 422, "validation_failed"],
      [`${s}/file?path=a%00b`, 422, "validation_failed"],
      [`${s}/file?path=a&maxBytes=0`, 422, "validation_failed"],
      [`${s}/files?path=.&recursive=1`, 422, "validation_failed"],
      [`/api/v1/sessions/not-a-uuid/sandbox`, 404, "not_found"],
      [`/api/v1/sessions/00000000-0000-4000-8000-000000000000/sandbox/files`, 404, "not_found"],
    ];
    for (const [p, status, code] of cases) {
      const r = await call(p);
      expect({ p, status: r.status, code: r.body?.error?.code, message: typeof r.body?.error?.message }).toEqual({ p, status, code, message: "string" });
    }
    const fresh = await newSession();
    const none = await call(`/api/v1/sessions/${fresh}/sandbox/files`);
    expect(none.status).toBe(409);
    expect(none.body.error).toMatchObject({ code: "sandbox_not_running", message: "this session has no sandbox yet" });
    expect((await call(`/api/v1/sessions/${fresh}/sandbox`)).body).toMatchObject({ sandbox: null, filesAvailable: false });
  });

  test("another team's session is 404 like a missing one; a viewer reads but cannot start", async () => {
    const accounts = new Accounts({ pool });
    await accounts.bootstrapAdmin({ email: "b@example.com", password: "another long password", teamSlug: "beta", teamName: "Beta" });
    const b = await accounts.login({ email: "b@example.com", password: "another long password", clientAddress: "test" });
    const bKey = (await accounts.createApiKey(b.principal, { name: "b", role: "admin" })).key;
    const s = `/api/v1/sessions/${sessionId}/sandbox`;
    for (const [p, method] of [
      [s, "GET"],
      [`${s}/files`, "GET"],
      [`${s}/file?path=notes/hello.txt`, "GET"],
      [`${s}/start`, "POST"],
    ] as const) {
      const r = await call(p, { key: bKey, method });
      expect({ p, status: r.status, code: r.body?.error?.code }).toEqual({ p, status: 404, code: "not_found" });
    }
    const viewer = await fetch(`${server.url}/api/v1/api-keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ro", role: "viewer" }),
    });
    const viewerKey = ((await viewer.json()) as { key: string }).key;
    expect((await call(s, { key: viewerKey })).body).toMatchObject({ sandbox: { state: "ready", driver: "local" }, filesAvailable: true });
    expect((await call(`${s}/file?path=notes/hello.txt`, { key: viewerKey })).body).toEqual({
      path: "notes/hello.txt",
      sizeBytes: 20,
      truncated: false,
      maxBytes: 262144,
      binary: false,
      content: "hello from the agent",
    });
    const list = await call(`${s}/files?path=notes`, { key: viewerKey });
    expect(list.body.entries.map((e: { path: string }) => e.path)).toEqual(["notes/big.log", "notes/hello.txt", "notes/image.bin"]);
    const start = await call(`${s}/start`, { key: viewerKey, method: "POST" });
    expect(start.status).toBe(403);
  });

  test("the OpenAPI document lists the sandbox routes", async () => {
    const doc = (await call("/api/v1/openapi.json")).body;
    for (const p of ["/api/v1/sessions/{id}/sandbox", "/api/v1/sessions/{id}/sandbox/files", "/api/v1/sessions/{id}/sandbox/file"])
      expect(doc.paths[p]?.get, p).toBeDefined();
    expect(doc.paths["/api/v1/sessions/{id}/sandbox/start"]?.post).toBeDefined();
  });
});
