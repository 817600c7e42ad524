// A rebuild under the same tag, as a developer does it (edit, kind/up.sh again): keel:dev gets a
// new image ID, kind/up.sh loads it and must roll the web and worker pods onto it. kind/up.sh
// stamps the image's ID on both pod templates (keel.dev/image-id); before it did, the Deployments'
// specs were unchanged, apply was skipped and the old pods kept serving the old code.
// The "rebuild" is keel:dev plus one label (no source change needed to get a new ID); afterwards
// the original image is tagged back and kind/up.sh rolls the pods back onto it.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, expect, test } from "vitest";
import { BASE_URL, kindEnv, kubectlJson, run, waitFor } from "./kind.ts";

const IMAGE = process.env.KEEL_IMAGE ?? "keel:dev";
let original = "";
let rebuilt = "";

const imageId = () => run("docker", ["image", "inspect", "-f", "{{.Id}}", IMAGE]).trim();
/** kind/up.sh from its load step (the images are built): load, apply, wait for the rollouts. */
const upFromLoad = () => run("bash", ["kind/up.sh", "--from", "load"], { env: { KEEL_NO_PORT_FORWARD: "1" } });

/** The stamp on each Deployment's template, and on each of its live pods. */
function stamps(component: "web" | "worker"): { template: string; pods: string[] } {
  const dep = kubectlJson(["-n", "keel", "get", "deployment", `keel-${component}`]);
  const pods = kubectlJson<{ items: any[] }>(["-n", "keel", "get", "pods", "-l", `app.kubernetes.io/component=${component}`]).items.filter(
    (p) => !p.metadata.deletionTimestamp,
  );
  return { template: dep.spec.template.metadata.annotations?.["keel.dev/image-id"], pods: pods.map((p) => p.metadata.annotations?.["keel.dev/image-id"]) };
}

beforeAll(() => {
  original = imageId();
});

afterAll(() => {
  if (!original || imageId() === original) return;
  run("docker", ["tag", original, IMAGE]);
  upFromLoad();
  if (rebuilt) spawnSync("docker", ["image", "rm", rebuilt], { env: kindEnv() });
}, 900_000);

test("kind/up.sh after a same-tag rebuild rolls the web and worker pods onto the new image", async () => {
  // What kind/up.sh deployed carries the ID of the image it built.
  for (const c of ["web", "worker"] as const) {
    const s = stamps(c);
    expect(s.template).toBe(original);
    expect(s.pods.length).toBeGreaterThan(0);
    expect(s.pods.every((id) => id === original)).toBe(true);
  }

  run("docker", ["build", "-q", "-t", IMAGE, "-"], { input: `FROM ${IMAGE}\nLABEL keel.e2e.rebuild="${Date.now()}"\n` });
  rebuilt = imageId();
  expect(rebuilt).not.toBe(original);
  const out = upFromLoad();
  expect(out).not.toMatch(/skipped: k8s\/overlays\/kind is applied and unchanged/);

  // up.sh waited for both rollouts: every live pod runs the rebuilt image, none the old one.
  for (const c of ["web", "worker"] as const) {
    await waitFor(
      () => {
        const s = stamps(c);
        return s.template === rebuilt && s.pods.length > 0 && s.pods.every((id) => id === rebuilt);
      },
      { what: `the ${c} pods to run the rebuilt image`, timeoutMs: 300_000 },
    );
  }
  expect((await fetch(`${BASE_URL}/readyz`)).status).toBe(200);

  // A second run with nothing rebuilt changes nothing.
  expect(upFromLoad()).toMatch(/skipped: k8s\/overlays\/kind is applied and unchanged, and the pods run/);
}, 900_000);
