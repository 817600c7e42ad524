// Exec records and fencing epochs, kept on disk in the workspace's hidden state dir so they
// survive a runtime restart (the local driver restarts the runtime from the persisted workspace;
// a Kubernetes pod restarts its container with the same volume).
//
// Writes are synchronous on purpose: the server is single-threaded, so a check-then-write of
// the epoch high-water mark cannot interleave with another request's.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";

export type ExecResult = {
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
  /** Which limit stopped the command, when one visibly did. */
  limit?: "cpu" | "memory" | "fileSize" | "processes" | "timeout" | "disk";
  /** The runtime restarted while this command ran: it may have run partly; it was not re-run. */
  interrupted?: boolean;
};

type ExecRecord = { key: string; status: "started" | "done"; startedAt: number; result?: ExecResult };

const MAX_FENCE_KEYS = 200;

export class Ledger {
  private readonly execDir: string;
  private readonly fenceFile: string;
  private fences: Record<string, number>;

  constructor(readonly stateDir: string) {
    this.execDir = path.join(stateDir, "exec");
    this.fenceFile = path.join(stateDir, "fences.json");
    mkdirSync(this.execDir, { recursive: true, mode: 0o700 });
    this.fences = readJson<Record<string, number>>(this.fenceFile) ?? {};
  }

  /**
   * Refuses an epoch lower than the highest seen for this fence key (a run id: epochs are per
   * run, and a session runs one run at a time). A higher epoch raises the mark durably first.
   */
  checkFence(fenceKey: string, epoch: number): { ok: true } | { ok: false; highest: number } {
    const highest = this.fences[fenceKey];
    if (highest !== undefined && epoch < highest) return { ok: false, highest };
    if (highest === undefined || epoch > highest) {
      delete this.fences[fenceKey];
      this.fences[fenceKey] = epoch;
      const keys = Object.keys(this.fences);
      // Insertion order is recency: drop the oldest runs' marks, they are long finished.
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_FENCE_KEYS))) delete this.fences[k];
      writeJsonDurable(this.fenceFile, this.fences);
    }
    return { ok: true };
  }

  get(key: string): ExecRecord | undefined {
    return readJson<ExecRecord>(this.recordPath(key));
  }

  started(key: string): void {
    writeJsonDurable(this.recordPath(key), { key, status: "started", startedAt: Date.now() } satisfies ExecRecord);
  }

  done(key: string, startedAt: number, result: ExecResult): void {
    writeJsonDurable(this.recordPath(key), { key, status: "done", startedAt, result } satisfies ExecRecord);
  }

  private recordPath(key: string): string {
    return path.join(this.execDir, `${createHash("sha256").update(key).digest("hex")}.json`);
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/**
 * Write to a temp file, rename: a crash leaves the old record or the new, never half. No fsync:
 * it cost ~6 ms per write here (two per exec), and it only guards against losing the machine,
 * which also loses the unsynced files the command itself wrote; the record then errs the same
 * way as the workspace does.
 */
function writeJsonDurable(file: string, value: unknown): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  renameSync(tmp, file);
}
