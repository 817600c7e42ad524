// The reaper a worker calls periodically: TTL → terminate, no live session → terminate,
// idle → suspend. Safe to run from every worker at once: each action goes through the driver,
// which serializes per sandbox and ignores a sandbox that changed under it.
import type { Logger } from "../logger.js";
import { silentLogger } from "../logger.js";
import type { SandboxDriver, SandboxInfo } from "./driver.js";

export type ReapResult = { suspended: string[]; terminated: string[]; orphaned: string[]; errors: { sandboxId: string; message: string }[] };

export async function reapSandboxes(opts: {
  driver: SandboxDriver;
  /** Of these session ids, the ones that still exist and may use a sandbox (see liveSessionIds). */
  liveSessions: (sessionIds: string[]) => Promise<Set<string>>;
  now?: () => number;
  logger?: Logger;
}): Promise<ReapResult> {
  const log = opts.logger ?? silentLogger;
  const now = (opts.now ?? Date.now)();
  const result: ReapResult = { suspended: [], terminated: [], orphaned: [], errors: [] };
  const all = (await opts.driver.list()).filter((s) => s.state !== "terminated");
  const live = await opts.liveSessions([...new Set(all.map((s) => s.sessionId))]);
  for (const s of all) {
    const action = decide(s, now, live.has(s.sessionId));
    if (!action) continue;
    try {
      if (action === "suspend") await opts.driver.suspend(s);
      else await opts.driver.release(s);
      (action === "suspend" ? result.suspended : action === "orphan" ? result.orphaned : result.terminated).push(s.sandboxId);
      log.info({ teamId: s.teamId, sessionId: s.sessionId, sandboxId: s.sandboxId, action }, "sandbox reaped");
    } catch (err) {
      result.errors.push({ sandboxId: s.sandboxId, message: (err as Error).message });
      log.warn({ teamId: s.teamId, sessionId: s.sessionId, sandboxId: s.sandboxId, action, err }, "sandbox reap failed");
    }
  }
  return result;
}

function decide(s: SandboxInfo, now: number, sessionLive: boolean): "terminate" | "orphan" | "suspend" | undefined {
  if (now - s.createdAt.getTime() > s.ttlMs) return "terminate";
  if (!sessionLive) return "orphan";
  if (s.state === "ready" && !s.inFlight && now - s.lastActiveAt.getTime() > s.idleTimeoutMs) return "suspend";
  return undefined;
}
