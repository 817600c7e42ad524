// The sandbox runtime's HTTP API. Every request carries the sandbox's bearer token. Errors are
// JSON `{ error: { code, message } }` with the status the core client maps back to a message.
//
// Two kinds of token. The working `token` opens every route. A `startToken` (Kubernetes: the
// template's, from a Secret every pod of the template shares, warm pool included) opens one
// thing, `POST /token`, which sets the working token once: the driver hands each pod its
// session's own token on first contact, and from then on the start token opens nothing. Until
// then no command runs and no file is read, so a start token (readable by code in any pod of the
// template) cannot plant anything in a pod another session will get.
import { createHash, timingSafeEqual } from "node:crypto";
import http from "node:http";
import path from "node:path";
import { runCommand, type Limits } from "./exec.js";
import { FileError, Workspace } from "./files.js";
import { Ledger, type ExecResult } from "./ledger.js";

export type RuntimeConfig = {
  /** The working token; unset: none until a `startToken` holder sets one (POST /token). */
  token?: string;
  /** Opens only POST /token, once. One of `token` and `startToken` is required. */
  startToken?: string;
  workspace: string;
  /** Defaults to <workspace>/.keel (hidden from the file API). */
  stateDir?: string;
  /** The whole environment of every command: PATH, HOME, the team's secrets. Nothing else leaks. */
  env: Record<string, string>;
  limits: Limits;
  maxBodyBytes?: number;
  /** fds of this process (the listening socket) that each command's shell closes before anything else runs. */
  privateFds?: number[];
};

const MAX_TIMEOUT_MS = 3_600_000;
/** A working token set through POST /token: at least this long (a base64url 32-byte token is 43). */
export const MIN_TOKEN_LENGTH = 32;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createRuntimeServer(config: RuntimeConfig): http.Server {
  const workspace = new Workspace(config.workspace);
  const ledger = new Ledger(config.stateDir ?? path.join(config.workspace, ".keel"));
  const inflight = new Map<string, Promise<ExecResult>>();
  if (!config.token && !config.startToken) throw new Error("the runtime needs a token or a start token");
  let tokenDigest = config.token ? digest(config.token) : undefined;
  let startDigest = config.startToken ? digest(config.startToken) : undefined;
  const maxBodyBytes = config.maxBodyBytes ?? 32 * 1024 * 1024;
  const activity = { inFlight: 0, lastAt: Date.now(), startedAt: Date.now() };

  const fence = (body: Record<string, unknown>) => {
    if (body.epoch === undefined || body.epoch === null) return;
    const epoch = Number(body.epoch);
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new HttpError(422, "validation_failed", "epoch must be a non-negative integer");
    const key = typeof body.fenceKey === "string" && body.fenceKey ? body.fenceKey : "default";
    const r = ledger.checkFence(key, epoch);
    if (!r.ok)
      throw new HttpError(409, "stale_epoch", `epoch ${epoch} is older than ${r.highest}, the newest seen for ${key}: this worker lost its claim on the run`);
  };

  async function exec(body: Record<string, unknown>, onOutput?: (s: "stdout" | "stderr", d: string) => void): Promise<ExecResult & { replayed?: boolean }> {
    const hasCommand = typeof body.command === "string" && body.command.length > 0;
    const hasArgv = Array.isArray(body.argv) && body.argv.length > 0 && body.argv.every((a) => typeof a === "string");
    if (hasCommand === hasArgv) throw new HttpError(422, "validation_failed", "give exactly one of command (a string for sh -c) or argv (an array of strings)");
    const timeoutMs = clampInt(body.timeoutMs, 60_000, 1, MAX_TIMEOUT_MS, "timeoutMs");
    const maxOutputBytes = clampInt(body.maxOutputBytes, 1024 * 1024, 0, MAX_OUTPUT_BYTES, "maxOutputBytes");
    const extraEnv = body.env ?? {};
    if (typeof extraEnv !== "object" || Array.isArray(extraEnv) || Object.values(extraEnv).some((v) => typeof v !== "string")) {
      throw new HttpError(422, "validation_failed", "env must be an object of strings");
    }
    const cwd = typeof body.cwd === "string" ? await workspace.resolve(body.cwd, { mustExist: true }) : config.workspace;
    fence(body);
    const key = typeof body.idempotencyKey === "string" && body.idempotencyKey ? body.idempotencyKey : undefined;
    if (key) {
      const running = inflight.get(key);
      if (running) return { ...(await running), replayed: true };
      const rec = ledger.get(key);
      if (rec?.status === "done" && rec.result) return { ...rec.result, replayed: true };
      if (rec?.status === "started") {
        return {
          exitCode: null,
          signal: null,
          stdout: "",
          truncated: false,
          timedOut: false,
          durationMs: 0,
          interrupted: true,
          replayed: true,
          stderr: "the sandbox runtime restarted while this command was running; it may have run partly and was not run again",
        };
      }
      ledger.started(key);
    }
    const argv = hasCommand ? ["/bin/sh", "-c", body.command as string] : (body.argv as string[]);
    const startedAt = Date.now();
    const p = runCommand(
      { argv, cwd, env: { ...config.env, ...(extraEnv as Record<string, string>) }, timeoutMs, maxOutputBytes, onOutput, closeFds: config.privateFds },
      config.limits,
    );
    if (key) inflight.set(key, p);
    try {
      const result = await p;
      if (key) ledger.done(key, startedAt, result);
      return result;
    } finally {
      if (key) inflight.delete(key);
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sandbox");
    const route = `${req.method} ${url.pathname}`;
    const working = tokenDigest !== undefined && authorized(req.headers.authorization, tokenDigest);
    const starting = !working && startDigest !== undefined && authorized(req.headers.authorization, startDigest);
    if (!working && !starting) throw new HttpError(401, "unauthorized", "missing or wrong bearer token");
    if (route === "POST /token") {
      // The start token sets the first working token and is spent; the working token rotates itself.
      const body = await readBody(req, 4096);
      const next = body.token;
      if (typeof next !== "string" || next.length < MIN_TOKEN_LENGTH || next.length > 512) {
        throw new HttpError(422, "validation_failed", `token must be a string of ${MIN_TOKEN_LENGTH} to 512 characters`);
      }
      if (starting) startDigest = undefined;
      tokenDigest = digest(next);
      return send(res, 200, { ok: true });
    }
    if (!working) throw new HttpError(403, "start_token", "this token only hands the sandbox over (POST /token); no command or file call takes it");
    if (route === "GET /healthz") {
      return send(res, 200, {
        ok: true,
        pid: process.pid,
        inFlight: activity.inFlight,
        idleMs: activity.inFlight > 0 ? 0 : Date.now() - activity.lastAt,
        uptimeMs: Date.now() - activity.startedAt,
      });
    }
    activity.inFlight++;
    try {
      switch (route) {
        case "POST /exec": {
          const body = await readBody(req, maxBodyBytes);
          const stream = url.searchParams.get("stream") === "1";
          if (!stream) return send(res, 200, await exec(body));
          // Validation and fencing errors still get a status: headers go out with the first byte.
          let started = false;
          const line = (v: unknown) => {
            if (!started) res.writeHead(200, { "content-type": "application/x-ndjson" });
            started = true;
            res.write(`${JSON.stringify(v)}\n`);
          };
          const result = await exec(body, (s, data) => line({ type: s, data }));
          line({ type: "result", result });
          return void res.end();
        }
        case "GET /files":
          return send(
            res,
            200,
            await workspace.read(
              url.searchParams.get("path") ?? "",
              clampInt(url.searchParams.get("maxBytes") ?? undefined, 1024 * 1024, 1, maxBodyBytes, "maxBytes"),
            ),
          );
        case "PUT /files": {
          const body = await readBody(req, maxBodyBytes);
          if (typeof body.content !== "string") throw new HttpError(422, "validation_failed", "content must be a string");
          const encoding = body.encoding === "base64" ? "base64" : "utf8";
          fence(body);
          return send(res, 200, await workspace.write(String(body.path ?? ""), body.content, encoding));
        }
        case "GET /files/list":
          return send(
            res,
            200,
            await workspace.list(url.searchParams.get("path") || ".", {
              recursive: url.searchParams.get("recursive") === "1",
              maxEntries: clampInt(url.searchParams.get("maxEntries") ?? undefined, 1000, 1, 10_000, "maxEntries"),
            }),
          );
        default:
          throw new HttpError(404, "not_found", `no route ${route}`);
      }
    } finally {
      activity.inFlight--;
      activity.lastAt = Date.now();
    }
  }

  return http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const known = err instanceof HttpError || err instanceof FileError;
      const status = known ? err.status : 500;
      const code = known ? err.code : "internal";
      const message = known ? err.message : `runtime error: ${(err as Error)?.message ?? String(err)}`;
      if (res.headersSent) return void res.end(`${JSON.stringify({ type: "error", error: { code, message } })}\n`);
      send(res, status, { error: { code, message } });
    });
  });
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** Constant-time: compare fixed-length digests, so neither content nor length leaks by timing. */
function authorized(header: string | undefined, expected: Buffer): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? "");
  return timingSafeEqual(digest(m?.[1] ?? ""), expected) && m !== null;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

async function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, "payload_too_large", `request body is over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    const v: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not an object");
    return v as Record<string, unknown>;
  } catch {
    throw new HttpError(400, "invalid_json", "request body must be a JSON object");
  }
}

function clampInt(v: unknown, dflt: number, min: number, max: number, name: string): number {
  if (v === undefined || v === null) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(422, "validation_failed", `${name} must be an integer from ${min} to ${max}`);
  return n;
}
