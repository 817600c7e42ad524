// Client of the sandbox runtime's HTTP API (sandbox/src/server.ts), over a unix socket (local
// driver: works with --unshare-net, and only processes that can open the socket file reach it)
// or a base URL (a pod on Kubernetes). Both drivers speak this one protocol.
//
// The other end is code a sandbox may have subverted, so every answer is untrusted: each call
// has a deadline (the whole exchange, not only idle time), a reply is capped in size, and a body
// that is not the JSON expected is a SandboxUnavailableError, never a throw from an event handler.
import { closeSync, lstatSync, openSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import pathMod from "node:path";
import type { ExecRequest, ExecResult, FileContent, FileEntry } from "./driver.js";
import { SandboxRequestError, SandboxUnavailableError } from "./errors.js";

/** `socketOwner`: connect only if the path is a socket (not a symlink) owned by this uid. */
export type RuntimeEndpoint = { socketPath: string; socketOwner?: number } | { baseUrl: string };

/**
 * Reply caps per call, from what the runtime can legitimately send: JSON escapes a byte into at
 * most 6 characters, and a streamed exec sends its output twice (lines, then the result).
 */
const KIB = 1024;
const replyCap = {
  small: 64 * KIB,
  exec: (maxOutputBytes = 1024 * KIB) => 2 * 2 * 6 * maxOutputBytes + 64 * KIB,
  file: (maxBytes = 1024 * KIB) => 6 * maxBytes + 64 * KIB,
  list: (maxEntries = 1000) => 4 * KIB * maxEntries + 64 * KIB,
};
/** Deadline of a call without its own (file calls); an exec's is its command timeout plus this. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
const EXEC_DEFAULT_TIMEOUT_MS = 60_000;
export type RuntimeHealth = { ok: boolean; pid: number; inFlight: number; idleMs: number; uptimeMs: number };

export class RuntimeClient {
  /** `timeoutMs`: deadline of file calls, and what an exec gets on top of its command's timeout. */
  constructor(
    private readonly endpoint: RuntimeEndpoint,
    private readonly token: string,
    private readonly opts: { timeoutMs?: number } = {},
  ) {}

  health(opts: { timeoutMs?: number } = {}): Promise<RuntimeHealth> {
    return this.request<RuntimeHealth>("GET", "/healthz", undefined, { timeoutMs: opts.timeoutMs ?? 2_000, maxBytes: replyCap.small }).then((h) => {
      if (typeof h !== "object" || h === null || typeof h.idleMs !== "number" || typeof h.inFlight !== "number")
        throw new SandboxUnavailableError("the sandbox runtime's health answer is malformed");
      return h;
    });
  }

  /** Sets the runtime's working token (sandbox/src/server.ts): with a start token, the one call it takes. */
  async setToken(token: string): Promise<void> {
    await this.request("POST", "/token", { token }, { timeoutMs: 5_000, maxBytes: replyCap.small });
  }

  async exec(req: ExecRequest): Promise<ExecResult> {
    const body = {
      ...(typeof req.command === "string" ? { command: req.command } : { argv: req.command }),
      timeoutMs: req.timeoutMs,
      maxOutputBytes: req.maxOutputBytes,
      cwd: req.cwd,
      env: req.env,
      idempotencyKey: req.idempotencyKey,
      epoch: req.epoch === undefined ? undefined : Number(req.epoch),
      fenceKey: req.fenceKey,
    };
    const timeoutMs = (req.timeoutMs ?? EXEC_DEFAULT_TIMEOUT_MS) + (this.opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
    const maxBytes = replyCap.exec(req.maxOutputBytes);
    if (!req.onOutput) return this.request<ExecResult>("POST", "/exec", body, { signal: req.signal, timeoutMs, maxBytes });
    let result: ExecResult | undefined;
    await this.request("POST", "/exec?stream=1", body, {
      signal: req.signal,
      timeoutMs,
      maxBytes,
      onLine: (line) => {
        const msg = JSON.parse(line) as { type: string; data?: string; result?: ExecResult; error?: { code: string; message: string } };
        if (msg.type === "stdout" || msg.type === "stderr") req.onOutput!(msg.type, msg.data ?? "");
        else if (msg.type === "result") result = msg.result;
        else if (msg.type === "error") throw new SandboxRequestError(msg.error!.code, 500, msg.error!.message);
      },
    });
    if (!result) throw new SandboxUnavailableError("the sandbox runtime closed the stream before the command's result");
    return result;
  }

  readFile(path: string, opts: { maxBytes?: number; signal?: AbortSignal } = {}): Promise<FileContent> {
    const q = new URLSearchParams({ path, ...(opts.maxBytes ? { maxBytes: String(opts.maxBytes) } : {}) });
    return this.request<FileContent>("GET", `/files?${q}`, undefined, { signal: opts.signal, maxBytes: replyCap.file(opts.maxBytes) });
  }

  writeFile(
    path: string,
    content: string,
    opts: { encoding?: "utf8" | "base64"; epoch?: bigint | number; fenceKey?: string; signal?: AbortSignal } = {},
  ): Promise<{ path: string; sizeBytes: number }> {
    const epoch = opts.epoch === undefined ? undefined : Number(opts.epoch);
    return this.request(
      "PUT",
      "/files",
      { path, content, encoding: opts.encoding, epoch, fenceKey: opts.fenceKey },
      { signal: opts.signal, maxBytes: replyCap.small },
    );
  }

  listFiles(
    path: string,
    opts: { recursive?: boolean; maxEntries?: number; signal?: AbortSignal } = {},
  ): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    const q = new URLSearchParams({ path, recursive: opts.recursive ? "1" : "0", ...(opts.maxEntries ? { maxEntries: String(opts.maxEntries) } : {}) });
    return this.request("GET", `/files/list?${q}`, undefined, { signal: opts.signal, maxBytes: replyCap.list(opts.maxEntries) });
  }

  private request<T>(
    method: string,
    path: string,
    body: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number; maxBytes: number; onLine?: (line: string) => void },
  ): Promise<T> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    return new Promise<T>((resolve, reject) => {
      let target;
      try {
        target =
          "socketPath" in this.endpoint
            ? { ...socketTarget(this.endpoint.socketPath, this.endpoint.socketOwner), path }
            : { ...urlParts(this.endpoint.baseUrl), path };
      } catch (err) {
        return reject(new SandboxUnavailableError(`cannot reach the sandbox runtime: ${(err as Error).message}`, {}, { cause: err }));
      }
      const req = http.request(
        {
          ...target,
          method,
          signal: opts.signal,
          // 0, not undefined: Node 20's global agent otherwise drops a socket idle for 5 s, which
          // failed every exec that printed nothing for 5 s ("no answer within undefined ms").
          timeout: opts.timeoutMs ?? 0,
          headers: {
            authorization: `Bearer ${this.token}`,
            ...(data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          let pending = "";
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > opts.maxBytes) {
              res.destroy();
              return void reject(new SandboxUnavailableError(`the sandbox runtime's answer is over ${opts.maxBytes} bytes`));
            }
            if (!opts.onLine || res.statusCode !== 200) return void chunks.push(c);
            pending += c.toString("utf8");
            let nl: number;
            try {
              while ((nl = pending.indexOf("\n")) >= 0) {
                const line = pending.slice(0, nl);
                pending = pending.slice(nl + 1);
                if (line) opts.onLine(line);
              }
            } catch (err) {
              res.destroy();
              reject(err);
            }
          });
          res.on("error", (err) => reject(new SandboxUnavailableError(`the sandbox runtime connection failed: ${err.message}`, {}, { cause: err })));
          res.on("close", () => {
            if (!res.complete) reject(new SandboxUnavailableError("the sandbox runtime's answer was cut off"));
          });
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            if (res.statusCode === 200) {
              if (opts.onLine) return resolve(undefined as T);
              try {
                return resolve(JSON.parse(text) as T);
              } catch {
                return reject(new SandboxUnavailableError("the sandbox runtime answered something that is not JSON"));
              }
            }
            let err: { code?: string; message?: string } = {};
            try {
              err = (JSON.parse(text) as { error: typeof err }).error ?? {};
            } catch {
              /* not JSON */
            }
            reject(
              new SandboxRequestError(err.code ?? "sandbox_error", res.statusCode ?? 500, err.message ?? `the sandbox runtime answered ${res.statusCode}`),
            );
          });
        },
      );
      // The whole exchange, not only idle time: a runtime that drips bytes is cut off too.
      timer = setTimeout(() => req.destroy(new Error(`no complete answer within ${timeoutMs} ms`)), timeoutMs);
      req.on("error", (err) => {
        if (opts.signal?.aborted) return reject(opts.signal.reason ?? err);
        reject(new SandboxUnavailableError(`cannot reach the sandbox runtime: ${err.message}`, {}, { cause: err }));
      });
      req.end(data);
    }).finally(() => clearTimeout(timer));
  }
}

/**
 * A unix socket path is limited to 107 bytes, and a sandbox's socket sits deep under the data
 * dir. For a long path, connect through /proc/self/fd/N/<name>, N an fd of the socket's
 * directory, held only until the connect() syscall (issued synchronously by libuv) is done.
 */
export function connectUnix(socketPath: string): net.Socket {
  if (Buffer.byteLength(socketPath) < 100) return net.createConnection(socketPath);
  const fd = openSync(pathMod.dirname(socketPath), "r");
  try {
    return net.createConnection(`/proc/self/fd/${fd}/${pathMod.basename(socketPath)}`);
  } finally {
    closeSync(fd);
  }
}

function socketTarget(socketPath: string, owner: number | undefined): { socketPath: string } | { createConnection: () => net.Socket } {
  if (owner !== undefined) {
    // lstat: a symlink is refused, not followed. The directory is ours alone, so nothing can
    // swap the file between this check and the connect.
    const st = lstatSync(socketPath, { throwIfNoEntry: false });
    if (!st) throw new Error(`no socket at ${socketPath}`);
    if (!st.isSocket() || st.uid !== owner) throw new Error(`${socketPath} is not a socket made by this process's user`);
  }
  if (Buffer.byteLength(socketPath) < 100) return { socketPath };
  return { createConnection: () => connectUnix(socketPath) };
}

function urlParts(baseUrl: string): { protocol: string; hostname: string; port: string } {
  const u = new URL(baseUrl);
  return { protocol: u.protocol, hostname: u.hostname, port: u.port };
}
