// The one wrapper every API route goes through: request id, authentication (cookie + CSRF, or
// API key), body size limit, JSON parsing, zod validation, and the one error → JSON mapping.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import {
  clientAddress,
  KeelError,
  parseTrustedProxies,
  requirePlatformAdmin,
  requireRole,
  toErrorBody,
  UnauthorizedError,
  ValidationError,
  type Principal,
  type Role,
  type TrustedProxies,
} from "@keel/core";
import { pathPattern, type ApiRoute } from "@keel/core/contract/api";
import { getContext, type Context } from "./context";
import { httpRequests } from "./metrics";
import { PEER_ADDRESS_HEADER } from "./peer";
import { validRequestId } from "./request-id";

export const SESSION_COOKIE = "keel_session";
export const MAX_BODY_BYTES = 1024 * 1024;

export class BadRequestError extends KeelError {
  constructor(code: string, message: string) {
    super(code, 400, message);
  }
}

type RawParams = Record<string, string>;
type Out<T, Else> = T extends z.ZodType ? z.output<T> : Else;
/** traceparent: this request's span context (continuing a valid caller's header), for the run it may enqueue. */
export type Call<B, Q, P = RawParams> = {
  req: Request;
  ctx: Context;
  principal: Principal;
  body: B;
  query: Q;
  params: P;
  requestId: string;
  traceparent: string | undefined;
};
/** What a handler of table entry R gets: the body, query and params as its schemas parse them. */
export type CallOf<R extends ApiRoute> = Call<Out<R["body"], undefined>, Out<R["query"], undefined>, Out<R["params"], RawParams>>;

/**
 * Wraps a handler of one entry of the route table (@keel/core/contract/api): its auth, role,
 * params, query and body schemas are applied here. It returns a Response, or a value sent as JSON
 * with the entry's status.
 */
export function route<R extends ApiRoute>(spec: R, handler: (c: CallOf<R>) => Promise<Response | unknown>) {
  const pattern = pathPattern(spec.path);
  return async (req: Request, routeCtx: { params: Promise<RawParams> }): Promise<Response> => {
    const requestId = validRequestId(req.headers.get("x-request-id")) ?? randomUUID();
    const started = performance.now();
    let res: Response;
    let ctx: Context | null = null;
    let span: ReturnType<Context["telemetry"]["request"]> | undefined;
    try {
      ctx = await getContext();
      span = ctx.telemetry.request(req.method, spec.path, req.headers.get("traceparent"));
      // A route file wired to another entry's schemas would validate the wrong thing: fail loudly.
      if ((req.method !== spec.method && !(req.method === "HEAD" && spec.method === "GET")) || !pattern.test(new URL(req.url).pathname)) {
        throw new Error(`route table entry ${spec.method} ${spec.path} serves ${req.method} ${new URL(req.url).pathname}`);
      }
      const principal = spec.auth === "none" ? (null as unknown as Principal) : await authenticate(ctx, req);
      if (principal) requireRole(principal, spec.role ?? (req.method === "GET" ? "viewer" : "member"));
      if (principal && spec.platform) requirePlatformAdmin(principal);
      const rawParams = (await routeCtx.params) ?? {};
      refuseControlCharacters(rawParams, "path", ALL_CONTROLS);
      const params = spec.params ? validateParams(spec.params, rawParams) : rawParams;
      const rawQuery = Object.fromEntries(new URL(req.url).searchParams);
      refuseControlCharacters(rawQuery, "query", ALL_CONTROLS);
      const query = validate<unknown>(spec.query ?? NoQuery, rawQuery);
      const body = spec.body ? validate<unknown>(spec.body, refuseControlCharacters(await readJson(req), "body", NUL)) : await refuseBody<undefined>(req);
      const out = await handler({ req, ctx, principal, body, query, params, requestId, traceparent: span.traceparent } as CallOf<R>);
      res = out instanceof Response ? out : json(out, spec.status);
    } catch (err) {
      res = errorResponse(err, ctx, requestId, req);
    }
    res.headers.set("x-request-id", requestId);
    span?.end(res.status);
    httpRequests.inc({ method: req.method, status: String(res.status) });
    ctx?.logger.debug(
      { requestId, method: req.method, path: new URL(req.url).pathname, status: res.status, ms: Math.round(performance.now() - started) },
      "request",
    );
    return res;
  };
}

/** Cookie session (CSRF checked for state-changing methods) or `Authorization: Bearer kk_…`. */
export async function authenticate(ctx: Context, req: Request, opts: { touch?: boolean } = {}): Promise<Principal> {
  const auth = req.headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m) throw new UnauthorizedError("Authorization must be 'Bearer <API key>'");
    return ctx.accounts.authenticateApiKey(m[1]!, opts);
  }
  const token = readCookie(req, SESSION_COOKIE);
  if (!token) throw new UnauthorizedError();
  const unsafe = !["GET", "HEAD", "OPTIONS"].includes(req.method);
  return ctx.accounts.authenticateSession(token, { required: unsafe, header: req.headers.get("x-csrf-token") });
}

/**
 * For long-lived answers (SSE): the same credentials must still be valid for the same team.
 * Rejects with a 401 KeelError when they are not (key revoked, logged out, member removed).
 */
export async function reauthenticate(ctx: Context, req: Request, was: Principal): Promise<void> {
  const now = await authenticate(ctx, req, { touch: false });
  if (now.teamId !== was.teamId) throw new UnauthorizedError("these credentials no longer belong to this team");
}

export function readCookie(req: Request, name: string): string | null {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return null; // not valid percent-encoding: no token of ours, so no session (401, not 500)
      }
    }
  }
  return null;
}

const g = globalThis as unknown as { __keelTrustedProxies?: { from: string; list: TrustedProxies | null } };

/**
 * The client's address for login limits: the socket's peer (set by `keel web` in
 * PEER_ADDRESS_HEADER, replacing anything a client sent), or the X-Forwarded-For hop a
 * KEEL_TRUSTED_PROXIES proxy added. Under plain `next start` (development) there is no socket
 * address: the hop nearest to us in X-Forwarded-For stands in (Next fills it from the socket
 * when a client sent none).
 */
export function requestClientAddress(ctx: Context, req: Request): string {
  const from = ctx.env.KEEL_TRUSTED_PROXIES ?? "";
  if (g.__keelTrustedProxies?.from !== from) g.__keelTrustedProxies = { from, list: from ? parseTrustedProxies(from) : null };
  const xff = req.headers.get("x-forwarded-for");
  const peer = req.headers.get(PEER_ADDRESS_HEADER) ?? xff?.split(",").pop()?.trim();
  return clientAddress(peer, xff, g.__keelTrustedProxies.list);
}

const NoQuery = z.strictObject({});
const NUL = /\u0000/;
// C0 controls and DEL. Allowed inside bodies (message text has tabs and newlines, pasted terminal
// output has ESC), refused in paths and query strings, and in one-line fields via the contract's `line()`.
const ALL_CONTROLS = /[\u0000-\u001f\u007f]/;

/**
 * Refuses NUL anywhere in a body (Postgres text and json cannot store U+0000: it would be a 500
 * after part of the work) and any control character in paths and queries. Iterative, so a
 * deeply nested body cannot overflow the stack.
 */
function refuseControlCharacters<T>(value: T, where: "path" | "query" | "body", re: RegExp): T {
  const stack: [unknown, string][] = [[value, ""]];
  while (stack.length) {
    const [v, at] = stack.pop()!;
    if (typeof v === "string") {
      if (re.test(v))
        throw new ValidationError(`control characters are not allowed in the ${where}`, {
          issues: [{ path: at, message: re === NUL ? "contains U+0000" : "contains a control character" }],
        });
    } else if (v && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) {
        if (re.test(k))
          throw new ValidationError(`control characters are not allowed in the ${where}`, {
            issues: [{ path: at, message: "a name contains a control character" }],
          });
        stack.push([x, at ? `${at}.${k}` : k]);
      }
    }
  }
  return value;
}

/** Routes without a body schema take no body: none, or `{}`. Anything else is refused, not ignored. */
async function refuseBody<B>(req: Request): Promise<B> {
  if (req.method === "GET" || req.method === "HEAD" || !req.body) return undefined as B;
  const text = await readText(req);
  if (text.length === 0) return undefined as B;
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(req.headers.get("content-type") ?? ""))
    throw new KeelError("unsupported_media_type", 415, "send the body as application/json");
  validate(z.strictObject({}), parseJson(text));
  return undefined as B;
}

/** Reads at most MAX_BODY_BYTES (413 past that, without buffering the rest) and parses JSON (400). */
export async function readJson(req: Request): Promise<unknown> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type)) throw new KeelError("unsupported_media_type", 415, "send the body as application/json");
  return parseJson(await readText(req));
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new BadRequestError("invalid_json", "the body is not valid JSON");
  }
}

async function readText(req: Request): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > MAX_BODY_BYTES) throw new KeelError("payload_too_large", 413, `the body is larger than ${MAX_BODY_BYTES} bytes`, { maxBytes: MAX_BODY_BYTES });
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = req.body?.getReader();
  while (reader) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new KeelError("payload_too_large", 413, `the body is larger than ${MAX_BODY_BYTES} bytes`, { maxBytes: MAX_BODY_BYTES });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A path param outside its schema (a malformed id) names nothing: 404 not_found, as a
 * well-formed id of no row answers, so ids cannot be told apart by their shape.
 */
function validateParams(schema: z.ZodType, raw: RawParams): RawParams {
  const r = schema.safeParse(raw);
  if (!r.success)
    throw new KeelError("not_found", 404, "no such resource: the path names none", {
      issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
    });
  return r.data as RawParams;
}

export function validate<T>(schema: z.ZodType<T>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw new ValidationError("invalid input", { issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })) });
  return r.data;
}

/** JSON with bigint as string. */
export function json(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  const text = data === undefined ? "" : JSON.stringify(data, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return new Response(status === 204 ? null : text, {
    status,
    headers: status === 204 ? headers : { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(err: unknown, ctx: Context | null, requestId: string, req: Request): Response {
  const { status, body, known } = toErrorBody(err);
  const log = ctx?.logger;
  if (known) log?.warn({ requestId, code: body.error.code, status, method: req.method }, "request refused");
  else if (log) log.error({ requestId, err, method: req.method, path: new URL(req.url).pathname }, "request failed");
  else console.error("request failed", requestId, err);
  const headers: Record<string, string> = {};
  const retry = (body.error.details as { retryAfterS?: number }).retryAfterS;
  if (status === 429 && retry) headers["retry-after"] = String(retry);
  return json(body, status, headers);
}

const INT64_MAX = 9223372036854775807n;
/** A non-negative integer that fits Postgres bigint (a larger one would be a 500 in the query). */
export function parseSeq(s: string): bigint | null {
  return /^\d{1,19}$/.test(s) && BigInt(s) <= INT64_MAX ? BigInt(s) : null;
}
