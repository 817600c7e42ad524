// The sandbox tools the agent loop registers: exec, read_file, write_file, list_files. Each call
// acquires the session's sandbox (creating, reattaching to or restarting it) and forwards to it.
// Results the model should read (non-zero exit, limits hit, timeouts) come back as values with
// an `error` sentence; refusals (bad path, stale epoch, no sandbox) throw with a clear message,
// which the loop turns into a tool error.
import type { Tool, ToolContext } from "../tools/tools.js";
import type { ExecResult, SandboxDriver, SandboxSecrets } from "./driver.js";
import { exposedSecrets, type SandboxPolicy } from "./policy.js";
import type { EngineTelemetry } from "../telemetry/hooks.js";

export type ResolveSandboxPolicy = (teamId: string, sessionId: string) => Promise<{ policy: SandboxPolicy; secrets: SandboxSecrets }>;
/** The fencing epoch of the run making the call (the worker knows it from its claim). */
export type EpochOf = (ctx: ToolContext) => bigint | number | undefined;

const MAX_EXEC_TIMEOUT_MS = 600_000;

export function createSandboxTools(driver: SandboxDriver, resolvePolicy: ResolveSandboxPolicy, epochOf?: EpochOf, telemetry?: EngineTelemetry): Tool[] {
  const sandbox = async (ctx: ToolContext) => {
    const { policy, secrets } = await resolvePolicy(ctx.teamId, ctx.sessionId);
    // Filter again here: the driver must only ever see the secrets this policy names.
    const acquire = () => driver.acquire(ctx.sessionId, ctx.teamId, policy, exposedSecrets(policy, secrets));
    return telemetry ? telemetry.sandboxAcquire({ driver: driver.name }, acquire) : acquire();
  };
  const fence = (ctx: ToolContext) => {
    const epoch = (epochOf ?? ((c: ToolContext) => c.epoch))(ctx);
    return epoch === undefined ? {} : { epoch, fenceKey: ctx.runId };
  };

  const exec: Tool = {
    name: "exec",
    description:
      "Runs a shell command (sh -c) in this session's sandbox, in /workspace, and returns exitCode, stdout and stderr. " +
      "Files persist between calls. No network unless the team allows it. CPU, memory, process and file-size limits apply.",
    parameters: {
      type: "object",
      properties: {
        command: { type: "string", minLength: 1, maxLength: 100_000, description: "Shell command, run with sh -c" },
        timeoutMs: { type: "integer", minimum: 100, maximum: MAX_EXEC_TIMEOUT_MS, description: "Wall-clock limit (default 60000)" },
        cwd: { type: "string", description: "Working directory relative to /workspace" },
      },
      required: ["command"],
      additionalProperties: false,
    },
    // Not idempotent for the ledger (a command may have side effects), but the runtime records
    // each idempotency key, so re-sending the same call after a crash never runs it twice.
    idempotent: false,
    requiresApproval: false,
    timeoutMs: MAX_EXEC_TIMEOUT_MS + 30_000,
    run: async (args, ctx) => {
      const a = args as { command: string; timeoutMs?: number; cwd?: string };
      const h = await sandbox(ctx);
      const r = await driver.exec(h, {
        command: a.command,
        timeoutMs: a.timeoutMs ?? 60_000,
        cwd: a.cwd,
        maxOutputBytes: 64 * 1024,
        idempotencyKey: ctx.idempotencyKey,
        signal: ctx.signal,
        ...fence(ctx),
      });
      return describeExec(r, a.timeoutMs ?? 60_000);
    },
  };

  const readFile: Tool = {
    name: "read_file",
    description: "Reads a file from this session's sandbox workspace (path relative to /workspace). Binary files come back base64-encoded.",
    parameters: {
      type: "object",
      properties: { path: { type: "string", minLength: 1 }, maxBytes: { type: "integer", minimum: 1, maximum: 1_048_576 } },
      required: ["path"],
      additionalProperties: false,
    },
    idempotent: true,
    requiresApproval: false,
    timeoutMs: 30_000,
    run: async (args, ctx) => {
      const a = args as { path: string; maxBytes?: number };
      return driver.readFile(await sandbox(ctx), a.path, { maxBytes: a.maxBytes ?? 256 * 1024, signal: ctx.signal });
    },
  };

  const writeFile: Tool = {
    name: "write_file",
    description:
      "Writes a file in this session's sandbox workspace (path relative to /workspace), creating parent directories and replacing any existing file.",
    parameters: {
      type: "object",
      properties: { path: { type: "string", minLength: 1 }, content: { type: "string", maxLength: 10_000_000 }, encoding: { enum: ["utf8", "base64"] } },
      required: ["path", "content"],
      additionalProperties: false,
    },
    // Writing the same content again leaves the same file.
    idempotent: true,
    requiresApproval: false,
    timeoutMs: 30_000,
    run: async (args, ctx) => {
      const a = args as { path: string; content: string; encoding?: "utf8" | "base64" };
      return driver.writeFile(await sandbox(ctx), a.path, a.content, { encoding: a.encoding ?? "utf8", signal: ctx.signal, ...fence(ctx) });
    },
  };

  const listFiles: Tool = {
    name: "list_files",
    description: "Lists files in this session's sandbox workspace (path relative to /workspace, default the workspace root).",
    parameters: { type: "object", properties: { path: { type: "string" }, recursive: { type: "boolean" } }, additionalProperties: false },
    idempotent: true,
    requiresApproval: false,
    timeoutMs: 30_000,
    run: async (args, ctx) => {
      const a = args as { path?: string; recursive?: boolean };
      return driver.listFiles(await sandbox(ctx), a.path || ".", { recursive: a.recursive === true, maxEntries: 500, signal: ctx.signal });
    },
  };

  return [exec, readFile, writeFile, listFiles];
}

const LIMIT_TEXT: Record<NonNullable<ExecResult["limit"]>, string> = {
  cpu: "the command was stopped: it used up its CPU time limit",
  memory: "the command ran out of memory: it hit the sandbox's memory limit",
  fileSize: "the command tried to write a file larger than the sandbox's file size limit",
  processes: "the command hit the sandbox's process limit (too many processes)",
  timeout: "the command was killed: it ran longer than its timeout",
  disk: "the command ran out of disk space: the workspace is full (it hit the sandbox's workspace size limit); delete files to make room",
};

/** The result as the model sees it: the raw fields plus one sentence when something went wrong. */
export function describeExec(r: ExecResult, timeoutMs: number): Record<string, unknown> {
  let error: string | undefined;
  if (r.interrupted) error = r.stderr;
  else if (r.limit) error = r.limit === "timeout" ? `${LIMIT_TEXT.timeout} (${timeoutMs} ms)` : LIMIT_TEXT[r.limit];
  else if (r.exitCode !== 0) error = r.signal ? `the command was killed by ${r.signal}` : `the command exited with status ${r.exitCode}`;
  return {
    exitCode: r.exitCode,
    stdout: r.stdout,
    stderr: r.stderr,
    ...(r.truncated ? { truncated: true, note: "output was cut at 64 KiB per stream; redirect to a file and read parts of it" } : {}),
    ...(r.timedOut ? { timedOut: true } : {}),
    ...(r.replayed ? { replayed: true } : {}),
    durationMs: r.durationMs,
    ...(error ? { error } : {}),
  };
}
