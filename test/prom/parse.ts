// Prometheus text exposition parsed by Prometheus' own parser (github.com/prometheus/common/expfmt,
// through main.go beside this file), for tests that read a /metrics. A JavaScript parser was tried
// first: parse-prometheus-text-format 1.1.1 folds every label set of a histogram into one and
// drops their counts, so it cannot check `keel_tool_call_seconds{tool="exec"}`.
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const dir = import.meta.dirname;
const bin = path.join(dir, "../../.tmp/promparse");

export type PromSample = {
  labels: Record<string, string>;
  /** Counters, gauges, untyped. */
  value?: number;
  /** Histograms and summaries. */
  count?: number;
  sum?: number;
  /** Cumulative, by upper bound ("0.1", "+Inf"). */
  buckets?: { le: string; count: number }[];
};
export type PromFamily = { name: string; help: string; type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"; samples: PromSample[] };

let built: Promise<unknown> | null = null;

/** Parses `text`; rejects with the parser's message when it is not valid exposition format. */
export async function parsePrometheusText(text: string): Promise<PromFamily[]> {
  // Go's build cache makes this a no-op after the first build on a machine (first: ~1-4 min on 2 busy cores).
  built ??= run("go", ["build", "-o", bin, "."], { cwd: dir, timeout: 600_000 });
  await built;
  const child = run(bin, [], { maxBuffer: 64 * 1024 * 1024 });
  child.child.stdin!.end(text);
  const { stdout } = await child;
  return JSON.parse(stdout) as PromFamily[];
}

export const promFamily = (fs: PromFamily[], name: string) => fs.find((f) => f.name === name);

/** The sample of `name` whose labels include `labels`. */
export const promSample = (fs: PromFamily[], name: string, labels: Record<string, string> = {}) =>
  promFamily(fs, name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
