// Browser-test helpers: Debian's Chromium through playwright-core, the dashboard's own markers
// (data-seq on every log event), layout checks, and restarting the web process on the same port
// (what a rolling restart looks like to a browser: the origin stays, the process changes).
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { waitFor } from "../../test/db.js";
import { ADMIN, serverDir, type RunningServer } from "./harness.js";

export const screenshotDir = path.join(path.dirname(serverDir), ".tmp/screenshots");

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.KEEL_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** The seqs of the log events the session view shows, in DOM order. */
export async function domSeqs(page: Page): Promise<number[]> {
  return page.$$eval("[data-seq]", (els) => els.map((e) => Number(e.getAttribute("data-seq"))));
}

/** Gapless from 1 and each seq once: what "no gap, no duplicate" means for a session view. */
export function isGapless(seqs: number[]): boolean {
  return seqs.length > 0 && seqs.every((s, i) => s === i + 1);
}

/** Page width fits the viewport: nothing scrolls sideways (wide tables scroll in their own box). */
export async function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => document.scrollingElement!.scrollWidth - window.innerWidth);
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Relative luminance (0 black … 1 white) of an element's computed background colour. */
export async function backgroundLuminance(page: Page, selector = "body"): Promise<number> {
  const rgb = await page.$eval(selector, (el) => getComputedStyle(el).backgroundColor);
  const [r, g, b] = (rgb.match(/\d+(\.\d+)?/g) ?? ["0", "0", "0"]).slice(0, 3).map((c) => Number(c) / 255) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** Waits until no "Loading…" placeholder is left on the page. */
export async function settled(page: Page): Promise<void> {
  await page.waitForFunction(() => ![...document.querySelectorAll('[role="status"]')].some((e) => e.textContent?.includes("Loading")), undefined, { timeout: 15_000 });
}

/** Stops a server and starts another `next start` on the same port against the same database. */
export async function restartOnSamePort(old: RunningServer, databaseUrl: string): Promise<RunningServer> {
  const port = Number(new URL(old.url).port);
  await old.stop();
  await waitFor(async () => !(await fetch(`http://127.0.0.1:${port}/healthz`).then(() => true, () => false)), { what: "old server gone" });
  return startServerOn(databaseUrl, port);
}

/** harness.startServer with a fixed port (it picks a free one); the same environment as there. */
async function startServerOn(databaseUrl: string, port: number): Promise<RunningServer> {
  const root = path.dirname(serverDir);
  let out = "";
  const env = {
    ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1", DATABASE_URL: databaseUrl,
    KEEL_ADMIN_EMAIL: ADMIN.email, KEEL_ADMIN_PASSWORD: ADMIN.password, KEEL_ADMIN_TEAM: "acme",
    KEEL_SECRETS_KEY: Buffer.alloc(32, 7).toString("base64"), KEEL_SSE_HEARTBEAT_MS: "300",
    KEEL_MIGRATIONS_DIR: path.join(root, "prisma/migrations"), KEEL_LOG_LEVEL: process.env.KEEL_TEST_LOG ? "debug" : "warn",
  };
  const proc = spawn(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "start", "-p", String(port), "-H", "127.0.0.1"], { cwd: serverDir, env, stdio: ["ignore", "pipe", "pipe"] });
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`restarted server exited ${proc.exitCode}:\n${out}`);
    return fetch(`${url}/healthz`).then((r) => r.ok, () => false);
  }, { timeoutMs: 30_000, what: "restarted server /healthz" });
  return {
    url, proc, output: () => out,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
