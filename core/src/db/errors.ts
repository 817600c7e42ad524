import { pgCode } from "./pool.js";

/**
 * True for errors that mean "the database could not be reached or dropped us", not "the query
 * was wrong": node-postgres connection errors carry no SQLSTATE, server shutdowns carry class 08
 * (connection exception) or 57P0x (operator intervention).
 */
export function isConnectionError(err: unknown): boolean {
  const code = pgCode(err);
  // 55000 with this text: the database exists but refuses connections (ALLOW_CONNECTIONS false, or being dropped/restored).
  if (code === "55000" && /not currently accepting connections/.test(String((err as Error).message))) return true;
  if (code === undefined) {
    const msg = err instanceof Error ? err.message : String(err);
    return /connect|Connection terminated|ECONNRESET|ECONNREFUSED|EPIPE|timeout|Client has encountered a connection error|not queryable/i.test(msg);
  }
  return code.startsWith("08") || code.startsWith("57P") || code === "ECONNREFUSED" || code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT";
}
