// Stops this package's control plane after the run (the harness never stops it by itself).
// KEEL_DESKTOP_KEEP_CP=1 leaves it up for fast reruns (up.sh on a running one: ~1.5 s).
import { stopControlPlane } from "./control-plane.ts";

export default function setup(): () => Promise<void> {
  return async () => {
    if (process.env.KEEL_DESKTOP_KEEP_CP !== "1") await stopControlPlane();
  };
}
