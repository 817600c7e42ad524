// The checks of kind/up.sh that need no cluster: it parses, shellcheck accepts it, and its
// prerequisite step fails fast with an actionable message (fake PATH). The script itself runs
// for real in the e2e suite (e2e/, a kind cluster).
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, expect, test } from "vitest";
import { repoRoot } from "./helpers.ts";

const script = path.join(repoRoot, "kind/up.sh");
const tmp = mkdtempSync(path.join(os.tmpdir(), "keel-kind-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A PATH with only bash, dirname and the given fake tools. */
function fakePath(name: string, tools: Record<string, string>): string {
  const dir = path.join(tmp, name);
  spawnSync("mkdir", ["-p", dir]);
  for (const t of ["bash", "dirname"]) symlinkSync(spawnSync("sh", ["-c", `command -v ${t}`], { encoding: "utf8" }).stdout.trim(), path.join(dir, t));
  for (const [t, body] of Object.entries(tools)) {
    writeFileSync(path.join(dir, t), `#!${path.join(dir, "bash")}\n${body}\n`);
    chmodSync(path.join(dir, t), 0o755);
  }
  return dir;
}
const run = (PATH: string) => spawnSync(path.join(PATH, "bash"), [script], { encoding: "utf8", env: { PATH, HOME: tmp } as unknown as NodeJS.ProcessEnv });

test("kind/up.sh parses and passes shellcheck", () => {
  expect(spawnSync("bash", ["-n", script]).status).toBe(0);
  const sc = spawnSync("shellcheck", [script], { encoding: "utf8" });
  if (sc.error) return; // shellcheck not installed: bash -n above is the check
  expect(sc.stdout + sc.stderr).toBe("");
  expect(sc.status).toBe(0);
});

test("no docker, kind or kubectl: one message listing each with how to install it", () => {
  const r = run(fakePath("none", {}));
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/missing prerequisites:\n\s+- docker: install .*get-docker.*\n\s+- kind: install .*kind\.sigs\.k8s\.io.*\n\s+- kubectl: install/);
  expect(r.stdout).not.toMatch(/\[2\]/);
});

test("docker CLI present but no engine: says to start Docker, creates nothing", () => {
  const r = run(
    fakePath("noengine", {
      docker: 'echo "docker $*" >> "$HOME/calls"; exit 1',
      kind: 'echo "kind $*" >> "$HOME/calls"',
      kubectl: 'echo "kubectl $*" >> "$HOME/calls"',
    }),
  );
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/docker is installed but its engine does not answer.*start Docker/);
  expect(spawnSync("cat", [path.join(tmp, "calls")], { encoding: "utf8" }).stdout.trim()).toBe("docker info");
});
