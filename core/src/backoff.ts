// The one retry-delay rule: run retries, claim failures, fenced writes and LISTEN reconnects.

/** Exponential backoff with full jitter, capped. `attempt` is 1 for the first retry. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
