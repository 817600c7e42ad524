// Debian's Chromium through playwright-core, launched the one way every browser test here uses
// (the dashboard tests, the desktop's renderer tests, the kind e2e suite). No DOM code, so
// suites type-checked without the DOM library can import it (@keel/server/testing/chromium).
import { chromium, type Browser } from "playwright-core";

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.KEEL_CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
