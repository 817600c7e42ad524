// This package's own control plane: a separate state dir and ports, so a run here never collides
// with controlplane/ or core tests using the defaults. Set before the harness reads them (it reads
// the env at call time; up.sh and down.sh inherit it). An explicit KEEL_CP_* env wins.
import path from "node:path";
import { fileURLToPath } from "node:url";

const defaults: Record<string, string> = {
  KEEL_CP_STATE_DIR: "/tmp/keel-cp-desktop",
  KEEL_CP_ETCD_PORT: "43790",
  KEEL_CP_API_PORT: "36443",
  KEEL_CP_KCM_PORT: "40257",
  KEEL_CP_SCHED_PORT: "40259",
  KEEL_CP_SANDBOX_PORT: "40280",
};
for (const [k, v] of Object.entries(defaults)) process.env[k] ??= v;
process.env.KEEL_CP_DIR ??= path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../controlplane");

export * from "@keel/controlplane/harness";
