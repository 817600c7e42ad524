// Failed-login limits, counted in Postgres so every web replica sees them. Two buckets, both
// filled only by the address that fails:
//   - per (account, address): 10 failures in 15 minutes stop guessing one account from one place;
//   - per address: 50 failures stop one place from spraying many accounts.
// There is deliberately no bucket per account alone: anyone could fill it and lock the real user
// out from everywhere (issue 13, item 7). Guessing one account from many addresses is bounded by
// the per-address limit times the addresses an attacker holds, scrypt's cost, and 12+ character
// passwords. The client address comes from the socket (see client-address.ts), never from a
// header a client can choose.
import type { Pool } from "../db/pool.js";
import { KeelError } from "../errors.js";

export class TooManyAttemptsError extends KeelError {
  constructor(retryAfterS: number) {
    super("too_many_attempts", 429, `too many failed logins; try again in ${retryAfterS} s`, { retryAfterS });
  }
}

export type LoginLimits = { windowMs: number; maxPerAccountAddress: number; maxPerAddress: number };

const accountKey = (account: string, address: string) => `acct:${account}|addr:${address}`;
const addressKey = (address: string) => `addr:${address}`;

/** Throws TooManyAttemptsError when this address used up its failures, for this account or overall. */
export async function checkLoginLimits(pool: Pool, account: string, address: string, l: LoginLimits): Promise<void> {
  const { rows } = await pool.query<{ key: string; n: number; oldest: Date }>(
    `SELECT key, count(*)::int AS n, min(created_at) AS oldest FROM login_attempts
     WHERE key = ANY($1) AND created_at > now() - $2 * interval '1 millisecond' GROUP BY key`,
    [[accountKey(account, address), addressKey(address)], l.windowMs],
  );
  for (const r of rows) {
    const max = r.key.startsWith("acct:") ? l.maxPerAccountAddress : l.maxPerAddress;
    if (r.n >= max) throw new TooManyAttemptsError(Math.max(1, Math.ceil((r.oldest.getTime() + l.windowMs - Date.now()) / 1000)));
  }
}

export async function recordLoginFailure(pool: Pool, account: string, address: string): Promise<void> {
  await pool.query("INSERT INTO login_attempts (key) VALUES ($1), ($2)", [accountKey(account, address), addressKey(address)]);
}

/**
 * Deletes failures older than the window (they count for nothing). Anonymous clients add two rows
 * per failed login, so without this the table grows for ever. Returns how many went.
 */
export async function pruneLoginAttempts(pool: Pool, windowMs: number): Promise<number> {
  const res = await pool.query("DELETE FROM login_attempts WHERE created_at < now() - $1 * interval '1 millisecond'", [windowMs]);
  return res.rowCount ?? 0;
}
