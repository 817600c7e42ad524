// The real renderer (electron-vite's build) in Chromium through the bridge, against the real control
// plane and a real Keel (web + demo-model worker + Postgres): pick a context (and see a broken one
// explained), create a sandbox claim and see it Ready, scale and delete; connect to Keel, browse
// sessions page by page, follow a live session and approve a tool call. Screenshots at 1280×800
// go to test-results/desktop/; every view is checked for horizontal overflow.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { backgroundLuminance, launchChromium } from "@keel/server/testing/browser";
import { freePort } from "@keel/cli/embedded-postgres";
import { waitFor } from "@keel/test/db";
import { startBridge, type Bridge } from "../../bridge/server.ts";
import { kindStubBin, templateYaml, warmPoolYaml } from "../helpers.ts";
import { loadKubeconfig } from "../../src/main/kube.ts";
import { createTestNamespace, kubectl, startControlPlane, type TestNamespace } from "../control-plane.ts";
import { startKeel, type Keel } from "../keel.ts";
import { reasoningStream, startFakeOpenAI, textStream, type FakeOpenAI } from "@keel/core/testing/fake-openai";

const desktopDir = path.resolve(import.meta.dirname, "../..");
const shots = path.resolve(desktopDir, "../test-results/desktop");
const CONTEXT = "keel-test";

let ns: TestNamespace;
let keel: Keel;
let bridge: Bridge;
let browser: Browser;
let page: Page;
let dir: string;
let historySession = "";
let stubState = "";
let liveSession = "";
let draftSession = "";
let fake: FakeOpenAI;

async function shot(p: Page, name: string): Promise<void> {
  mkdirSync(shots, { recursive: true });
  await p.screenshot({ path: path.join(shots, `${name}.png`) });
}

/** Nothing wider than its box: the page, the main panes and every card. */
async function overflow(p: Page): Promise<string[]> {
  return p.evaluate(() =>
    [document.scrollingElement!, ...document.querySelectorAll(".app, .topbar, .content, .card, .split, .log")]
      .filter((el) => el.scrollWidth > el.clientWidth)
      .map((el) => `${el.tagName.toLowerCase()}.${(el as HTMLElement).className}: ${el.scrollWidth} > ${el.clientWidth}`),
  );
}

async function settle(p: Page): Promise<void> {
  await p.waitForFunction(() => ![...document.querySelectorAll('[role="status"]')].some((e) => e.textContent?.includes("Loading")), undefined, {
    timeout: 30_000,
  });
}

beforeAll(async () => {
  // The renderer the test drives is built here, so this is also the CI check that `electron-vite build` passes.
  const build = spawnSync(process.execPath, [path.join(desktopDir, "../node_modules/electron-vite/bin/electron-vite.js"), "build"], {
    cwd: desktopDir,
    encoding: "utf8",
  });
  if (build.status !== 0) throw new Error(`electron-vite build failed:\n${build.stdout}\n${build.stderr}`);

  const kubeconfig = await startControlPlane();
  ns = await createTestNamespace("ui");
  await kubectl(["apply", "-n", ns.name, "-f", "-"], {
    input: `${templateYaml("agent")}---\n${warmPoolYaml("agent", "agent", 1)}`,
  });
  // A second kubeconfig file with a context whose cluster is down, as an operator's often has.
  dir = mkdtempSync(path.join(os.tmpdir(), "keel-desktop-ui-"));
  const broken = path.join(dir, "broken.yaml");
  writeFileSync(
    broken,
    `apiVersion: v1
kind: Config
clusters:
- name: old-cluster
  cluster:
    server: https://127.0.0.1:${await freePort()}
    insecure-skip-tls-verify: true
users:
- name: old-user
  user:
    token: stale
contexts:
- name: old-cluster
  context:
    cluster: old-cluster
    user: old-user
`,
  );
  const KUBECONFIG = [kubeconfig, broken].join(path.delimiter);

  keel = await startKeel();
  // 23 sessions: more than one page (20) of the list.
  for (let i = 1; i <= 20; i++) await keel.newSession(`filler ${String(i).padStart(2, "0")}`);
  historySession = await keel.newSession("history: hello");
  await keel.post(historySession, "hello");
  await waitFor(
    async () => (await keel.api(`/api/v1/sessions/${historySession}/events`)).body.events.some((e: { type: string }) => e.type === "assistant_message"),
    { what: "first answer", timeoutMs: 30_000 },
  );
  liveSession = await keel.newSession("live: approval");
  // An agent on a slow loopback model (the stand-in for the provider), to see a reply being written.
  fake = await startFakeOpenAI();
  const slowBot = await keel.api("/api/v1/agents", { body: { name: "slow-bot", model: "gpt-test", provider: { baseUrl: fake.url }, tools: ["calculator"] } });
  draftSession = (await keel.api("/api/v1/sessions", { body: { agentId: slowBot.body.id, title: "live: drafts" } })).body.id;

  // The kind launcher runs the real kind/up.sh with stub docker, kind and kubectl first on its PATH
  // (test/fixtures/kind-stub.sh: records calls, keeps a fake cluster, fails where told).
  const bin = path.join(dir, "bin");
  stubState = path.join(dir, "stub-state");
  kindStubBin(bin);
  mkdirSync(stubState);
  bridge = await startBridge({
    staticDir: path.join(desktopDir, "out/renderer"),
    load: () => loadKubeconfig({ env: { KUBECONFIG } }),
    sessions: { reconnectBaseMs: 200, reconnectMaxMs: 1_000 },
    launcher: { env: { PATH: bin, HOME: dir, STUB_STATE: stubState } as unknown as NodeJS.ProcessEnv, port: await freePort(), graceMs: 1_000 },
  });
  browser = await launchChromium();
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
  page = await ctx.newPage();
  page.on("pageerror", (e) => console.error("page error:", e.message));
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await bridge?.close();
  await keel?.stop();
  await fake?.close();
  await ns?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.sequential("desktop renderer through the bridge", () => {
  test("contexts: the current one connects; a cluster that is down is explained; namespace picker lists namespaces", async () => {
    await page.goto(bridge.pageUrl);
    const picker = page.getByLabel("context", { exact: true });
    await expect.poll(() => picker.inputValue()).toBe(CONTEXT);
    await page.getByTestId("connection").filter({ hasText: "connected · v1.36.3" }).waitFor();
    // No Keel Deployment in the test cluster: a note, not an error, and the rest still works.
    await page.locator('.note[data-code="keel_missing"]').waitFor();

    await picker.selectOption("old-cluster");
    const alert = page.locator('.context-problems [role="alert"][data-code="unreachable"]');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(
      /cannot reach the API server of context "old-cluster" at https:\/\/127\.0\.0\.1:\d+: .*Check that the cluster is running/,
    );
    await page.getByRole("alert").filter({ hasText: "Cannot list sandboxes" }).waitFor();
    await shot(page, "context-unreachable");
    expect(await overflow(page)).toEqual([]);

    await picker.selectOption(CONTEXT);
    await page.getByTestId("connection").filter({ hasText: "connected" }).waitFor();
    const nsPicker = page.getByLabel("namespace", { exact: true });
    await expect.poll(() => nsPicker.locator("option").allTextContents()).toEqual(expect.arrayContaining(["All namespaces", ns.name, "default"]));
    await nsPicker.selectOption(ns.name);
    await settle(page);
  });

  test("sandboxes: create a claim from a template, see it Ready, scale the warm pool, delete the claim", async () => {
    const templates = page.locator('section[data-kind="SandboxTemplate"]');
    await templates.locator('tr[data-name="agent"]').waitFor();
    expect(await page.locator('section[data-kind="SandboxClaim"] [data-testid="empty"]').textContent()).toContain("No claims");
    await page.getByRole("button", { name: "create claim from agent" }).click();

    const claim = page.locator('section[data-kind="SandboxClaim"] tbody tr').first();
    await claim.waitFor();
    const claimName = (await claim.getAttribute("data-name"))!;
    expect(claimName).toMatch(/^agent-[0-9a-f]{6}$/);
    await page.locator(`section[data-kind="SandboxClaim"] tr[data-name="${claimName}"][data-status="ready"]`).waitFor({ timeout: 90_000 });
    const row = await page.locator(`section[data-kind="SandboxClaim"] tr[data-name="${claimName}"]`).textContent();
    expect(row).toMatch(/ready/);
    expect(row).toMatch(/sandbox \S+/);
    await page.locator('section[data-kind="Sandbox"] tr[data-status="ready"]').first().waitFor();
    await settle(page);
    await shot(page, "sandboxes-claim-ready");
    expect(await overflow(page)).toEqual([]);

    await page.getByTestId("watch").filter({ hasText: "Live: watching for changes" }).waitFor();

    // Suspend (agent-sandbox deletes the pod), resume (a new pod, Ready), and the events of it all.
    await page.getByRole("button", { name: `suspend ${claimName}` }).click();
    await page.locator(`section[data-kind="SandboxClaim"] tr[data-name="${claimName}"][data-status="suspended"]`).waitFor({ timeout: 90_000 });
    await page.getByRole("button", { name: `resume ${claimName}` }).click();
    await page.locator(`section[data-kind="SandboxClaim"] tr[data-name="${claimName}"][data-status="ready"]`).waitFor({ timeout: 90_000 });
    await page.getByRole("button", { name: `events of ${claimName}` }).click();
    const events = page.getByTestId("sandbox-events");
    // The resume made a new pod: the scheduler's event for it is there (the claim took a warm
    // sandbox, so there is no provisioning event of the claim's own).
    await events.locator('tr[data-reason="Scheduled"]').first().waitFor();
    expect(await events.locator('tr[data-reason="Scheduled"]').first().textContent()).toMatch(/^Pod\//);
    await settle(page);
    await shot(page, "sandboxes-events");
    expect(await overflow(page)).toEqual([]);

    // The same row in the cluster, by kubectl: the UI shows what is there.
    const { stdout } = await kubectl(["get", "sandboxclaims.extensions.agents.x-k8s.io", "-n", ns.name, "-o", "jsonpath={.items[*].metadata.name}"]);
    expect(stdout.trim().split(/\s+/)).toContain(claimName);

    const replicas = page.getByLabel("replicas of agent", { exact: true });
    await replicas.fill("two");
    expect(await page.locator('section[data-kind="SandboxWarmPool"]').getByRole("button", { name: "Scale" }).isDisabled()).toBe(true);
    await replicas.fill("2");
    await page.locator('section[data-kind="SandboxWarmPool"]').getByRole("button", { name: "Scale" }).click();
    await page.locator('section[data-kind="SandboxWarmPool"] tr[data-name="agent"]').filter({ hasText: "2/2" }).waitFor({ timeout: 90_000 });

    // Keel's own claim for a session (its driver's labels), arriving through the watch: team and
    // session shown, a warning, and no suspend or delete.
    await kubectl(["apply", "-n", ns.name, "-f", "-"], {
      input: `apiVersion: extensions.agents.x-k8s.io/v1beta1
kind: SandboxClaim
metadata:
  name: s-sess-ui
  labels: { app.kubernetes.io/managed-by: keel, keel.dev/team: team-ui, keel.dev/session: sess-ui }
spec:
  warmPoolRef: { name: agent }
`,
    });
    const keelRow = page.locator('section[data-kind="SandboxClaim"] tr[data-name="s-sess-ui"]');
    await keelRow.getByTestId("keel-managed").waitFor();
    expect(await keelRow.getByTestId("keel-owner").textContent()).toBe("team team-ui · session sess-ui");
    expect(await page.getByRole("button", { name: "delete s-sess-ui" }).isDisabled()).toBe(true);
    expect(await page.getByRole("button", { name: "suspend s-sess-ui" }).isDisabled()).toBe(true);
    await settle(page);
    await shot(page, "sandboxes-keel-claim");
    expect(await overflow(page)).toEqual([]);
    await kubectl(["delete", "sandboxclaims.extensions.agents.x-k8s.io", "s-sess-ui", "-n", ns.name]);

    // Delete asks first: "Keep" leaves the claim, the confirmation deletes it.
    await page.getByRole("button", { name: `delete ${claimName}` }).click();
    await page
      .getByRole("group", { name: `confirm delete ${claimName}` })
      .getByRole("button", { name: "Keep" })
      .click();
    expect((await kubectl(["get", "sandboxclaims.extensions.agents.x-k8s.io", claimName, "-n", ns.name, "-o", "name"])).stdout.trim()).toContain(claimName);
    await page.getByRole("button", { name: `delete ${claimName}` }).click();
    await page.getByRole("button", { name: `confirm delete ${claimName}` }).click();
    await page.locator(`section[data-kind="SandboxClaim"] tr[data-name="${claimName}"]`).waitFor({ state: "detached", timeout: 90_000 });
  });

  test("sessions: a wrong key is refused with the reason; then browse every session page by page and read a history", async () => {
    await page.getByRole("tab", { name: "Sessions" }).click();
    await page.getByLabel("Keel URL", { exact: true }).fill(keel.url);
    await page.getByLabel("API key", { exact: true }).fill("kk_wrong");
    await page.getByRole("button", { name: "Connect", exact: true }).click();
    const refused = page.locator('[role="alert"][data-code="unauthorized"]');
    await refused.waitFor();
    expect(await refused.textContent()).toContain("rejected the API key");
    await shot(page, "sessions-connect-refused");
    expect(await overflow(page)).toEqual([]);

    await page.getByLabel("API key", { exact: true }).fill(keel.apiKey);
    // Through the cluster: the test cluster has no Keel, and the app says so.
    await page.getByRole("button", { name: `Connect through ${CONTEXT}` }).click();
    const missing = page.locator('[role="alert"][data-code="keel_missing"]');
    await missing.waitFor();
    expect(await missing.textContent()).toContain(`there is no Service keel/keel-web in context "${CONTEXT}"`);

    await page.getByRole("button", { name: "Connect", exact: true }).click();
    const items = page.locator("[data-session]");
    await expect.poll(() => items.count()).toBe(20);
    await page.getByRole("button", { name: "Load more" }).click();
    await expect.poll(() => items.count()).toBe(23);
    await expect.poll(() => page.getByRole("button", { name: "Load more" }).count()).toBe(0);
    const ids = await items.evaluateAll((els) => els.map((e) => e.getAttribute("data-session")));
    expect(new Set(ids).size).toBe(23);

    await page.locator(`button[data-session="${historySession}"]`).click();
    const stored = (await keel.api(`/api/v1/sessions/${historySession}/events`)).body.events.map((e: { seq: string }) => e.seq);
    await expect.poll(() => page.locator("section.session [data-seq]").evaluateAll((els) => els.map((e) => e.getAttribute("data-seq")))).toEqual(stored);
    await page.getByTestId("follow-state").filter({ hasText: "live" }).waitFor();
    expect(await page.locator('section.session [data-type="user_message"]').textContent()).toContain("hello");
    await settle(page);
    await shot(page, "sessions-history");
    expect(await overflow(page)).toEqual([]);
  });

  test("follow a live session: the approval appears, Approve runs the tool, the answer arrives; the view matches the log", async () => {
    await page.locator(`button[data-session="${liveSession}"]`).click();
    await page.getByTestId("follow-state").filter({ hasText: "live" }).waitFor();
    expect(await page.locator("section.session").textContent()).toContain("No events yet");

    await keel.post(liveSession, "calculate 6*7");
    const approve = page.locator("section.session").getByRole("button", { name: "Approve" });
    await approve.waitFor({ timeout: 30_000 });
    // While the run waits for the approval, a message sent with "if busy: reject" is refused with
    // the server's own code (the main process used to turn it into a generic "conflict").
    const composer = page.locator("section.session form.composer");
    await composer.getByLabel("message", { exact: true }).fill("are you there?");
    await composer.getByLabel("if busy", { exact: true }).selectOption("reject");
    await composer.getByRole("button", { name: "Send" }).click();
    const busy = page.locator('section.session [role="alert"][data-code="session_busy"]');
    await busy.waitFor();
    expect(await busy.textContent()).toContain("the session is running");
    await shot(page, "session-approval");
    expect(await overflow(page)).toEqual([]);
    await approve.click();
    await page.locator('section.session [data-type="tool_result"]').filter({ hasText: "42" }).waitFor({ timeout: 30_000 });
    await page.locator('section.session [data-type="approval_decided"]').filter({ hasText: "Approved" }).waitFor();
    await expect.poll(() => page.locator('section.session [data-type="assistant_message"]').count(), { timeout: 30_000 }).toBe(2);
    await expect.poll(() => approve.count()).toBe(0);

    const stored = (await keel.api(`/api/v1/sessions/${liveSession}/events`)).body.events.map((e: { seq: string }) => e.seq);
    const shown = await page.locator("section.session [data-seq]").evaluateAll((els) => els.map((e) => e.getAttribute("data-seq")));
    expect(shown).toEqual(stored);
    expect(shown.map(Number)).toEqual(shown.map((_, i) => i + 1));
    await shot(page, "session-approved");
    expect(await overflow(page)).toEqual([]);

    // Deny with a reason: the model sees it as the tool's result.
    await keel.post(liveSession, "calculate 1+1");
    await page.locator("section.session").getByRole("button", { name: "Deny…" }).click();
    await page.getByLabel("deny reason", { exact: true }).fill("not now");
    await page.locator("section.session").getByRole("button", { name: "Deny", exact: true }).click();
    await page.locator('section.session [data-type="tool_result"]').filter({ hasText: "not now" }).waitFor({ timeout: 30_000 });
    await page.locator('section.session [data-type="approval_requested"]').last().locator(".badge").filter({ hasText: "denied" }).waitFor();
    const after = (await keel.api(`/api/v1/sessions/${liveSession}/events`)).body.events.map((e: { seq: string }) => e.seq);
    await expect.poll(() => page.locator("section.session [data-seq]").evaluateAll((els) => els.map((e) => e.getAttribute("data-seq")))).toEqual(after);
  });

  test("a reply being written shows its reasoning and tool call live; the stored messages replace the draft", async () => {
    fake.enqueue(
      {
        kind: "stream",
        chunks: reasoningStream(
          { reasoningContent: "Six times seven; let me use the calculator.", toolCalls: [{ id: "d1", name: "calculator", args: '{"expression":"6*7"}' }] },
          { chunkSize: 3, splitArgsInto: 6 },
        ),
        delayMs: 100,
      },
      { kind: "stream", chunks: textStream("It is 42, as the calculator says.") },
    );
    await page.locator(`button[data-session="${draftSession}"]`).click();
    await page.getByTestId("follow-state").filter({ hasText: "live" }).waitFor();
    // Every state the draft is rendered in, recorded in the page: a draft lives only while the
    // model writes, so a poll from here could miss it on a busy machine.
    await page.evaluate(() => {
      const seen: string[] = ((window as unknown as { drafts: string[] }).drafts = []);
      new MutationObserver(() => {
        const d = document.querySelector('[data-testid="draft"]');
        if (d)
          seen.push(
            `${d.querySelector('[data-testid="draft-reasoning"]')?.textContent ?? ""} | ${d.querySelector('[data-testid="draft-tools"]')?.textContent ?? ""}`,
          );
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const drafts = () => page.evaluate(() => (window as unknown as { drafts: string[] }).drafts);
    expect((await keel.api(`/api/v1/sessions/${draftSession}/messages`, { body: { content: "what is 6*7?" } })).status).toBe(202);
    await page.getByTestId("draft-reasoning").waitFor({ timeout: 30_000 });
    await shot(page, "session-draft");
    expect(await overflow(page)).toEqual([]);
    await page.locator('section.session [data-type="tool_result"]').filter({ hasText: "42" }).waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('section.session [data-type="assistant_message"]').count(), { timeout: 30_000 }).toBe(2);
    await expect.poll(() => page.getByTestId("draft").count()).toBe(0);
    const seen = await drafts();
    expect(seen.some((d) => d.startsWith("Reasoning…Six times") && !d.includes("calculator("))).toBe(true); // reasoning first, as it streamed
    expect(seen).toContain('Reasoning…Six times seven; let me use the calculator. | calculator({"expression":"6*7"}');
    expect(await page.locator('section.session [data-type="assistant_message"]').first().textContent()).toContain(
      "Six times seven; let me use the calculator.",
    );
    expect(await page.locator('section.session [data-type="assistant_message"]').last().textContent()).toContain("It is 42, as the calculator says.");
  });

  test("local cluster: prerequisites, a failed step with its logs, retry from it, the dashboard link, tear down", async () => {
    await page.getByRole("tab", { name: "Local cluster" }).click();
    await page.getByTestId("launcher-status").filter({ hasText: "idle" }).waitFor();
    await page.getByRole("button", { name: "Check prerequisites" }).click();
    await page.locator('[data-testid="prereqs"] [data-check="docker"]').filter({ hasText: "ok" }).waitFor();
    expect(await page.getByTestId("prereqs").locator("li").count()).toBeGreaterThanOrEqual(5);

    writeFileSync(path.join(stubState, "control"), "fail kubectl * apply --server-side -k *\n");
    await page.getByRole("button", { name: "Start", exact: true }).click();
    await page.getByTestId("launcher-status").filter({ hasText: "failed" }).waitFor({ timeout: 60_000 });
    expect(await page.locator('tr[data-step="apply"]').getAttribute("data-state")).toBe("failed");
    expect(await page.locator('tr[data-step="cluster"]').getAttribute("data-state")).toBe("done");
    await page.getByRole("alert").filter({ hasText: "Step apply failed" }).waitFor();
    await page.getByTestId("launcher-logs").filter({ hasText: "failed as told" }).waitFor();
    await shot(page, "local-failed");
    expect(await overflow(page)).toEqual([]);

    rmSync(path.join(stubState, "control"));
    await page.getByRole("button", { name: "Retry from failed step" }).click();
    await page.getByTestId("launcher-status").filter({ hasText: "succeeded" }).waitFor({ timeout: 60_000 });
    expect(await page.locator("tr[data-step]").evaluateAll((els) => els.map((e) => e.getAttribute("data-state")))).not.toContain("failed");
    const link = page.getByTestId("dashboard").getByRole("link");
    expect(await link.getAttribute("href")).toMatch(/^http:\/\/(127\.0\.0\.1|localhost):\d+/);
    await shot(page, "local-succeeded");
    expect(await overflow(page)).toEqual([]);

    // No Keel behind the stub cluster: the handover says why there is no connection.
    await page.getByTestId("handover").filter({ hasText: "Keel is up, but the app could not connect to it" }).waitFor();

    // Tear down asks first; only the confirmation deletes the cluster.
    await page.getByRole("button", { name: "Tear down" }).click();
    await page.getByRole("group", { name: "confirm tear down" }).filter({ hasText: "Delete the kind cluster keel and everything in it?" }).waitFor();
    expect(readFileSync(path.join(stubState, "calls"), "utf8")).not.toContain("kind delete cluster");
    await page.getByRole("button", { name: "Delete the cluster" }).click();
    await page.getByTestId("launcher-status").filter({ hasText: "torn-down" }).waitFor({ timeout: 60_000 });
  });

  test("dark mode follows prefers-color-scheme; no overflow there either", async () => {
    expect(await backgroundLuminance(page)).toBeGreaterThan(0.8);
    const dark = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
    const p = await dark.newPage();
    await p.goto(bridge.pageUrl);
    await p.getByTestId("connection").filter({ hasText: "connected" }).waitFor();
    await p.getByLabel("namespace", { exact: true }).selectOption(ns.name);
    await p.locator('section[data-kind="SandboxTemplate"] tr[data-name="agent"]').waitFor();
    await settle(p);
    expect(await backgroundLuminance(p)).toBeLessThan(0.2);
    expect(await backgroundLuminance(p, ".card")).toBeLessThan(0.2);
    await shot(p, "sandboxes-dark");
    expect(await overflow(p)).toEqual([]);
    await dark.close();
  });
});
