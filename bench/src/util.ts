// Small helpers shared by the bench scenarios: timing, percentiles, polling, formatting.
import { loadavg } from "node:os";

/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes to ~1 ms). */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of a sample (p in 0..100). */
export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i]!;
}

export type Dist = { n: number; p50: number; p99: number; max: number; mean: number };

export function dist(xs: readonly number[]): Dist {
  const mean = xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  return { n: xs.length, p50: pct(xs, 50), p99: pct(xs, 99), max: pct(xs, 100), mean };
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return ms >= 10 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}

/** A markdown table of latency distributions: header row, separator, one row per sample set. */
export function distTable(title: string, rows: readonly (readonly [string, readonly number[]])[]): string[] {
  return [
    `| ${title} | n | p50 | p99 | max |`,
    "|---|---|---|---|---|",
    ...rows.map(([name, xs]) => {
      const d = dist(xs);
      return `| ${name} | ${d.n} | ${fmtMs(d.p50)} | ${fmtMs(d.p99)} | ${fmtMs(d.max)} |`;
    }),
  ];
}

export const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" / ");

/** Polls until `check` returns a truthy value; null after `timeoutMs`. */
export async function pollUntil<T>(check: () => Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 20): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(everyMs);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export const log = (msg: string): void => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
