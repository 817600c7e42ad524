// Which errors mean "the database could not be reached or dropped us" (hand the run back, no
// attempt counted) rather than "the query was wrong" or "something else failed".
//
// Decided by code only, never by message text: a model SDK's "Connection error." or a tool's
// "connect ECONNREFUSED" once read as a database outage and put runs in an endless hot loop
// (issue 13, item 1). Server errors carry a SQLSTATE; the driver's own connection errors carry
// none (or a socket code shared with every other network client), so the pool marks them with
// DB_CONNECTION_CODE where they arise: on our pool's connections, nowhere else.
import pg from "pg";

/** Set on driver errors that mean the connection failed or was lost (never on server errors). */
export const DB_CONNECTION_CODE = "KEEL_DB_CONNECTION";
const MARK = Symbol.for("keel.dbConnectionError");

/**
 * The connection failures pg and pg-pool raise as plain Errors, by their exact text in pg 8.x
 * (lib/client.js, pg-pool/index.js). Read only for errors coming out of our pool's clients.
 */
const DRIVER_CONNECTION_MESSAGES = new Set([
  "Connection terminated unexpectedly",
  "Connection terminated",
  "Connection terminated due to connection timeout",
  "Client has encountered a connection error and is not queryable",
  "Client was closed and is not queryable",
  "Query read timeout",
  "timeout exceeded when trying to connect",
  "timeout expired",
]);
/** Socket errors (Node system error codes) on a database connection. */
const SOCKET_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function codeOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/** Marks a connection-level error from our driver; returns it unchanged otherwise. */
export function markDriverError<E>(err: E): E {
  if (!(err instanceof Error) || err instanceof pg.DatabaseError) return err;
  const code = codeOf(err);
  if ((code === undefined && DRIVER_CONNECTION_MESSAGES.has(err.message)) || (code !== undefined && SOCKET_CODES.has(code))) {
    Object.defineProperty(err, MARK, { value: true });
    if (code === undefined) Object.defineProperty(err, "code", { value: DB_CONNECTION_CODE, enumerable: true, configurable: true, writable: true });
  }
  return err;
}

export function isConnectionError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  if ((err as { [MARK]?: boolean })[MARK] === true) return true;
  if (!(err instanceof pg.DatabaseError)) return false;
  const code = err.code ?? "";
  // 08: connection exception; 57P0x: admin/crash shutdown, cannot connect now; 55000 with
  // ALLOW_CONNECTIONS false (database being dropped or restored) comes as object_not_in_prerequisite_state.
  return code.startsWith("08") || code.startsWith("57P") || (code === "55000" && /not currently accepting connections/.test(err.message));
}

type Callback = (err: unknown, ...rest: unknown[]) => void;
const wrapCallback = (args: unknown[]): void => {
  const last = args.at(-1);
  if (typeof last === "function") args[args.length - 1] = (err: unknown, ...rest: unknown[]) => (last as Callback)(markDriverError(err), ...rest);
};
const wrapResult = <T>(r: T): T =>
  r && typeof (r as { then?: unknown }).then === "function"
    ? ((r as unknown as Promise<unknown>).catch((e: unknown) => {
        throw markDriverError(e);
      }) as T)
    : r;

/** pg.Client whose query and connect errors are marked (pg-pool takes it as its `Client`). */
export class DriverClient extends pg.Client {
  override query(...args: unknown[]): never {
    wrapCallback(args);
    return wrapResult((pg.Client.prototype.query as (...a: unknown[]) => unknown).apply(this, args)) as never;
  }
  override connect(...args: unknown[]): never {
    wrapCallback(args);
    return wrapResult((pg.Client.prototype.connect as (...a: unknown[]) => unknown).apply(this, args)) as never;
  }
}

/** pg-pool raises its own connect timeout; pool.query goes through this.connect too. */
export function markPoolConnectErrors(pool: pg.Pool): void {
  const connect = pool.connect.bind(pool) as (...a: unknown[]) => unknown;
  pool.connect = ((...args: unknown[]) => {
    wrapCallback(args);
    return wrapResult(connect(...args));
  }) as typeof pool.connect;
}
