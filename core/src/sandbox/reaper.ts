// The reaper a worker calls periodically: TTL → terminate, no live session → terminate,
// idle → suspend. Safe to run from every worker at once: each action goes through the driver,
// which serializes per sandbox and ignores a sandbox that changed under it.
import type { Logger } from "../logger.js";
import { silentLogger } from "../logger.js";
import type { SandboxDriver, SandboxInfo } from "./driver.js";

export type ReapResult = {
  suspended: string[];
  terminated: string[];
  orphaned: string[];
  /** Teams whose resources (Kubernetes: the namespace) were removed: the team no longer exists. */
  teamsRemoved: string[];
  errors: { sandboxId?: string; teamId?: string; message: string }[];
};

export async function reapSandboxes(opts: {
  driver: SandboxDriver;
  /** Of these session ids, the ones that still exist and may use a sandbox (see liveSessionIds). */
  liveSessions: (sessionIds: string[]) => Promise<Set<string>>;
  /** Of these team ids, the ones that still exist (see liveTeamIds); null: cannot tell; unset: team resources are left alone. */
  liveTeams?: (teamIds: string[]) => Promise<Set<string> | null>;
  now?: () => number;
  logger?: Logger;
}): Promise<ReapResult> {
  const log = opts.logger ?? silentLogger;
  const now = (opts.now ?? Date.now)();
  const result: ReapResult = { suspended: [], terminated: [], orphaned: [], teamsRemoved: [], errors: [] };
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
  if (opts.liveTeams && opts.driver.teamsWithResources && opts.driver.removeTeam) {
    const teams = await opts.driver.teamsWithResources();
    const live = teams.length ? await opts.liveTeams(teams) : new Set<string>();
    if (live === null) log.warn({ teams: teams.length }, "this database holds no team at all (the wrong database?): team resources left alone");
    for (const teamId of live === null ? [] : teams.filter((t) => !live.has(t))) {
      try {
        await opts.driver.removeTeam(teamId);
        result.teamsRemoved.push(teamId);
        log.warn({ teamId }, "resources of a deleted team removed");
      } catch (err) {
        result.errors.push({ teamId, message: (err as Error).message });
        log.warn({ teamId, err }, "removing a deleted team's resources failed");
      }
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
