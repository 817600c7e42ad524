// Deploys Keel on kind the way kind/README.md and k8s/README.md tell a user to: kind/up.sh (every
// step; a second run on a ready cluster changes nothing). The cluster stays up afterwards for the
// next run (KEEL_E2E_DOWN=1 deletes it). A failing step fails the whole suite with its output.
import { spawnSync } from "node:child_process";
import { repoRoot, kindEnv } from "./kind.ts";

export default function setup(): () => void {
  const t0 = Date.now();
  const r = spawnSync("bash", ["kind/up.sh"], { cwd: repoRoot, env: kindEnv(), stdio: "inherit" });
  if (r.status !== 0) throw new Error(`kind/up.sh failed (exit ${r.status}): Keel is not deployed on kind; see its output above`);
  process.stdout.write(`[e2e] kind/up.sh: ready in ${Math.round((Date.now() - t0) / 1000)} s\n`);
  return () => {
    if (process.env.KEEL_E2E_DOWN === "1") spawnSync("bash", ["kind/down.sh"], { cwd: repoRoot, env: kindEnv(), stdio: "inherit" });
  };
}
