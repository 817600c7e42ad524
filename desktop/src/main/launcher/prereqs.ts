// Prerequisites of the local kind environment, checked before the first step (as Podman
// Desktop's kind flow does): every problem at once, each with how to fix it. kind/up.sh's
// `prereqs` step checks the same things with the same words for people running the script.
import { execFile } from "node:child_process";
import { accessSync, constants, statSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import type { PrereqCheck, PrereqReport } from "../../shared/contract.ts";

export const INSTALL_HINTS = {
  docker: "install Docker Desktop or Docker Engine (https://docs.docker.com/get-docker/)",
  kind: "install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation), e.g. 'go install sigs.k8s.io/kind@v0.31.0'",
  kubectl: "install it (https://kubernetes.io/docs/tasks/tools/)",
} as const;

/** An executable called `name` on env.PATH (with PATHEXT on Windows), as a shell would find it. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | null {
  const exts = process.platform === "win32" ? (env.PATHEXT ?? ".EXE;.CMD;.BAT").split(";") : [""];
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const file = path.join(dir, name + ext);
      try {
        if (!statSync(file).isFile()) continue;
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        /* not here */
      }
    }
  }
  return null;
}

/** Whether something listens on 127.0.0.1:port (binding tells; a connect would miss 0.0.0.0 listeners on some systems). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) =>
      resolve({ ok: !err, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

export type PrereqOptions = { env: NodeJS.ProcessEnv; port: number; minDockerMemoryMb: number; timeoutMs?: number };

export async function checkPrerequisites(o: PrereqOptions): Promise<PrereqReport> {
  const checks: PrereqCheck[] = [];
  const found: Partial<Record<"docker" | "kind" | "kubectl", string>> = {};
  for (const tool of ["docker", "kind", "kubectl"] as const) {
    const file = findOnPath(tool, o.env);
    if (file) found[tool] = file;
    checks.push(
      file
        ? { id: tool, status: "ok", message: `${tool} found at ${file}` }
        : { id: tool, status: "failed", message: `${tool} is not on your PATH: ${INSTALL_HINTS[tool]}` },
    );
  }

  if (!found.docker) {
    checks.push(
      { id: "docker-engine", status: "skipped", message: "needs the docker CLI" },
      { id: "memory", status: "skipped", message: "needs the docker CLI" },
    );
  } else {
    // One call answers both: the engine is up, and how much memory it may use (Docker Desktop's
    // VM limit on macOS/Windows, the host's memory on Linux).
    const info = await run(found.docker, ["info", "--format", "{{.MemTotal}}"], o.env, o.timeoutMs ?? 20_000);
    if (!info.ok) {
      const why = info.stderr.trim().split("\n").pop();
      checks.push({
        id: "docker-engine",
        status: "failed",
        message: `docker is installed but its engine does not answer ('docker info' failed${why ? `: ${why}` : ""}): start Docker and retry`,
      });
      checks.push({ id: "memory", status: "skipped", message: "needs a running Docker engine" });
    } else {
      checks.push({ id: "docker-engine", status: "ok", message: "the Docker engine answers" });
      const bytes = Number(info.stdout.trim());
      const mb = Math.floor(bytes / 1048576);
      if (!Number.isFinite(bytes) || bytes <= 0)
        checks.push({ id: "memory", status: "skipped", message: `docker info did not report its memory (${JSON.stringify(info.stdout.trim().slice(0, 40))})` });
      else if (mb < o.minDockerMemoryMb) {
        checks.push({
          id: "memory",
          status: "failed",
          message: `Docker has ${mb} MiB of memory; Keel on kind needs at least ${o.minDockerMemoryMb} MiB: raise it (Docker Desktop: Settings > Resources > Memory) or free memory, then retry`,
        });
      } else checks.push({ id: "memory", status: "ok", message: `Docker has ${mb} MiB of memory (${o.minDockerMemoryMb} MiB needed)` });
    }
  }

  checks.push(
    (await portFree(o.port))
      ? { id: "port", status: "ok", message: `port ${o.port} is free for the dashboard` }
      : { id: "port", status: "failed", message: `port ${o.port} is in use: stop what listens there or choose another port (KEEL_PORT)` },
  );
  return { ok: checks.every((c) => c.status !== "failed"), checks };
}
