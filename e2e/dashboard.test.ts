// The dashboard on kind, in Chromium (playwright-core, Debian's /usr/bin/chromium), as a user
// sees it after kind/up.sh: http://localhost:3000 (kind's port mapping to the web NodePort), the
// admin login kind/up.sh printed, a new agent, a chat whose tool call runs in a sandbox pod, the
// sandbox's state in the session view, and its file list: the web pod has no cluster access, so a
// worker reads the pod's files for it (core/src/sandbox/relay.ts).
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launchChromium } from "@keel/server/testing/chromium";
import { adminLogin, BASE_URL, kubectl, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

let browser: Browser;
let page: Page;
const agentName = `e2e-ui-${Date.now()}`;
let sessionId = "";

beforeAll(async () => {
  browser = await launchChromium();
  page = await (await browser.newContext({ baseURL: BASE_URL, viewport: { width: 1280, height: 900 } })).newPage();
});

afterAll(async () => {
  await browser?.close();
  if (sessionId) releaseSandbox(sessionId);
});

describe.sequential("dashboard on kind", () => {
  test("logs in with the generated admin login", async () => {
    const admin = adminLogin();
    await page.goto("/agents");
    await page.waitForURL(/\/login$/);
    await page.getByLabel("Email", { exact: true }).fill(admin.email);
    await page.getByLabel("Password", { exact: true }).fill(admin.password);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(/\/agents$/);
  });

  test("creates an agent, chats; the exec runs in a sandbox pod the session view shows ready", async () => {
    await page.getByRole("button", { name: "New agent" }).click();
    await page.getByLabel("Name", { exact: true }).fill(agentName);
    await page.getByLabel("Model", { exact: true }).fill("demo");
    await page.getByLabel("tool exec", { exact: true }).check();
    await page.getByRole("button", { name: "Create agent" }).click();
    const row = page.locator(`tr[data-agent="${agentName}"]`);
    await row.waitFor();
    await row.getByRole("button", { name: "New session" }).click();
    await page.waitForURL(/\/sessions\/[0-9a-f-]{36}$/);
    sessionId = page.url().split("/").pop()!;

    await page.getByLabel("message", { exact: true }).fill("run mkdir -p notes && echo hello-from-kind > notes/hello.txt && echo done");
    await page.getByLabel("message", { exact: true }).press("Enter");
    await page.locator('[data-type="tool_result"]').filter({ hasText: "done" }).waitFor({ timeout: 300_000 });
    await page.getByTestId("run-state").filter({ hasText: "idle" }).waitFor({ timeout: 120_000 });

    // The session view shows the sandbox the Kubernetes driver made, ready.
    await page.getByTestId("sandbox").getByTestId("sandbox-state").filter({ hasText: "ready" }).waitFor();
    // The file the agent wrote is in that pod's workspace.
    const pod = await waitFor(() => sandboxPod(sessionId), { what: "the session's sandbox pod" });
    expect(kubectl(["-n", pod.namespace, "exec", pod.name, "--", "cat", "/workspace/notes/hello.txt"]).stdout.trim()).toBe("hello-from-kind");
  });

  test("the session view lists the sandbox's files and opens the one the agent wrote", async () => {
    const files = page.getByTestId("sandbox-files");
    await files.locator('tr[data-file="notes"]').getByRole("link", { name: "notes/" }).click();
    await files.locator('tr[data-file="notes/hello.txt"]').getByRole("link", { name: "hello.txt" }).click();
    await page.getByTestId("file-view").getByTestId("file-content").filter({ hasText: "hello-from-kind" }).waitFor();
    expect(await files.locator(".error").count()).toBe(0);
  });
});
