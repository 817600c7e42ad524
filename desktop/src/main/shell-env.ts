// An app started from the Dock, Finder, a desktop launcher or a file manager gets the session's
// bare environment, not the one the user's shell builds: no Homebrew/asdf/gcloud PATH entries and
// no KUBECONFIG, so exec auth plugins (aws, gke-gcloud-auth-plugin, kubelogin) and docker, kind
// and kubectl are not found. At start (macOS and Linux) the app asks the user's login shell for its
// environment, as VS Code does: `$SHELL -ilc` prints it between two random markers (rc files may
// print anything around it), with a deadline (a shell rc that waits for input must not hang the
// app). The result is merged into process.env before any kubeconfig is read or tool is run.
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";

/** Variables the shell sets about itself, or that would break the app if taken from it. */
const SKIP = new Set(["_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "TERM_SESSION_ID", "ELECTRON_RUN_AS_NODE", "ELECTRON_NO_ATTACH_CONSOLE"]);

export type ShellEnvResult = { ok: true; env: Record<string, string>; shell: string } | { ok: false; shell: string; error: string };

/** The login shell's environment, or why it could not be read. Never throws. */
export function readLoginShellEnv(
  o: { shell?: string | undefined; env?: Record<string, string | undefined>; timeoutMs?: number } = {},
): Promise<ShellEnvResult> {
  const base = o.env ?? process.env;
  const shell = o.shell ?? base.SHELL ?? (process.platform === "darwin" ? "/bin/zsh" : "/bin/sh");
  const mark = `__KEEL_ENV_${randomUUID().replace(/-/g, "")}__`;
  // env -0 separates by NUL (values may hold newlines); an env without -0 falls back to lines.
  const script = `printf '%s' '${mark}'; command env -0 2>/dev/null || command env; printf '%s' '${mark}'`;
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    let out = "";
    let err = "";
    let done = false;
    const finish = (r: ShellEnvResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    // Own process group: on timeout the shell and whatever its rc files started are killed together.
    const child = spawn(shell, ["-i", "-l", "-c", script], {
      env: { ...base, KEEL_RESOLVING_SHELL_ENV: "1" } as unknown as NodeJS.ProcessEnv,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
      finish({ ok: false, shell, error: `${shell} -ilc did not print its environment within ${timeoutMs} ms (does a shell startup file wait for input?)` });
    }, timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-2_000)));
    child.on("error", (e) => finish({ ok: false, shell, error: `could not run ${shell}: ${e.message}` }));
    child.on("close", (code) => {
      const start = out.indexOf(mark);
      const end = out.lastIndexOf(mark);
      if (start < 0 || end <= start) {
        const why = err.trim().split("\n").pop();
        finish({ ok: false, shell, error: `${shell} -ilc exited with ${code} without printing its environment${why ? `: ${why}` : ""}` });
        return;
      }
      finish({ ok: true, shell, env: parseEnv(out.slice(start + mark.length, end)) });
    });
  });
}

/** `env -0` output, or `env`'s lines (a line without '=' continues the previous value). */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  const nul = text.includes("\0");
  let last: string | undefined;
  for (const entry of text.split(nul ? "\0" : "\n")) {
    const i = entry.indexOf("=");
    if (i > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(entry.slice(0, i))) {
      last = entry.slice(0, i);
      env[last] = entry.slice(i + 1);
    } else if (!nul && last !== undefined && entry) env[last] += `\n${entry}`;
  }
  return env;
}

/**
 * Reads the login shell's environment into `target` (process.env) on macOS and Linux; the shell's
 * values win (PATH, KUBECONFIG, AWS_PROFILE, …), except the shell's own bookkeeping. Returns what
 * happened so the app can log it; on failure `target` is unchanged.
 */
export async function applyLoginShellEnv(
  target: Record<string, string | undefined> = process.env,
  o: { platform?: NodeJS.Platform; shell?: string; timeoutMs?: number } = {},
): Promise<ShellEnvResult | { ok: false; shell: null; error: string }> {
  const platform = o.platform ?? process.platform;
  if (platform !== "darwin" && platform !== "linux") return { ok: false, shell: null, error: `not resolved on ${platform}` };
  const r = await readLoginShellEnv({ shell: o.shell, env: target, ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}) });
  if (r.ok) for (const [k, v] of Object.entries(r.env)) if (!SKIP.has(k) && k !== "KEEL_RESOLVING_SHELL_ENV") target[k] = v;
  return r;
}
