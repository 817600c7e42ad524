// Browser-test helpers: Debian's Chromium through playwright-core, the dashboard's own markers
// (data-seq on every log event), layout checks, and restarting the web process on the same port
// (what a rolling restart looks like to a browser: the origin stays, the process changes).
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { waitFor } from "@keel/test/db";
import { serverDir, startServer, type RunningServer } from "./harness.js";

export const screenshotDir = path.join(path.dirname(serverDir), ".tmp/screenshots");

export { launchChromium } from "./chromium.js";

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
  await page.waitForFunction(() => ![...document.querySelectorAll('[role="status"]')].some((e) => e.textContent?.includes("Loading")), undefined, {
    timeout: 15_000,
  });
}

/** Stops a server and starts another `next start` on the same port against the same database. */
export async function restartOnSamePort(old: RunningServer, databaseUrl: string): Promise<RunningServer> {
  const port = Number(new URL(old.url).port);
  await old.stop();
  await waitFor(
    async () =>
      !(await fetch(`http://127.0.0.1:${port}/healthz`).then(
        () => true,
        () => false,
      )),
    { what: "old server gone" },
  );
  return startServer(databaseUrl, {}, port);
}
