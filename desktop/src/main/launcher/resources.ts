// Where the launcher finds kind/up.sh and the manifests it applies (k8s/), in each way the app runs:
// - packaged: electron-builder copies kind/ and k8s/ beside app.asar (extraResources in
//   electron-builder.yml), i.e. under process.resourcesPath. That directory may be read-only (an
//   AppImage is a squashfs, a signed macOS bundle must not change) and up.sh writes a temporary
//   overlay under its root, so both are copied to a directory under userData and run from there;
// - from the bundle in the tree (desktop/out/main/main.js) or from the sources
//   (desktop/src/main/launcher/*.ts): the checkout's own kind/ and k8s/, found by walking up from
//   this module's directory (the two sit at different depths, so no fixed relative path works).
// A source tree (a Dockerfile at the root) builds the Keel image; without one the launcher runs a
// published image instead (see publishedImage).
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import path from "node:path";

export type ScriptLayout = {
  /** The directory holding kind/ and k8s/ the steps run from. */
  root: string;
  /** root/kind/up.sh */
  script: string;
  /** A checkout with the Dockerfile: the image can be built from it. */
  sourceTree: boolean;
  /** Where it came from: "resources" (a package) or "checkout". */
  origin: "resources" | "checkout";
};

export type LayoutInput = {
  /** app.isPackaged */
  packaged: boolean;
  /** process.resourcesPath (packaged) */
  resourcesPath?: string | undefined;
  /** A writable directory for the copy of the resources (app.getPath("userData")/kind-env). */
  stagingDir?: string | undefined;
  /** The calling module's directory: the search for a checkout starts here. */
  from: string;
};

export class ScriptNotFoundError extends Error {
  override readonly name = "LauncherError";
  readonly code = "not_found";
}

const hasScript = (dir: string) => existsSync(path.join(dir, "kind", "up.sh")) && existsSync(path.join(dir, "k8s"));

/** The checkout that holds `from` (the nearest ancestor with kind/up.sh and k8s/), or null. */
export function findCheckout(from: string): string | null {
  let dir = path.resolve(from);
  for (;;) {
    if (hasScript(dir)) return dir;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Resolves (and, for a package, stages) the script's directory. Throws ScriptNotFoundError with where it looked. */
export function resolveScriptLayout(o: LayoutInput): ScriptLayout {
  if (o.packaged) {
    const res = o.resourcesPath ?? "";
    if (!res || !hasScript(res)) {
      throw new ScriptNotFoundError(
        `the app's resources have no kind/up.sh and k8s/ (looked in ${res || "an unknown resources directory"}): this package was built without its extraResources; reinstall it`,
      );
    }
    if (!o.stagingDir) return layout(res, "resources");
    // A fresh copy per start: the app may have been updated since the last one.
    rmSync(o.stagingDir, { recursive: true, force: true });
    mkdirSync(o.stagingDir, { recursive: true });
    for (const d of ["kind", "k8s"]) cpSync(path.join(res, d), path.join(o.stagingDir, d), { recursive: true });
    return layout(o.stagingDir, "resources");
  }
  const root = findCheckout(o.from);
  if (!root) {
    throw new ScriptNotFoundError(
      `cannot find kind/up.sh: no directory above ${o.from} holds kind/ and k8s/. Run the app from a Keel checkout or install the packaged app`,
    );
  }
  return layout(root, "checkout");
}

function layout(root: string, origin: ScriptLayout["origin"]): ScriptLayout {
  return { root, script: path.join(root, "kind", "up.sh"), sourceTree: existsSync(path.join(root, "Dockerfile")), origin };
}

/**
 * The image a launcher without a source tree runs: KEEL_PUBLISHED_IMAGE, else the production
 * overlay's repository (k8s/overlays/production: ghcr.io/example/keel, to be replaced by the real
 * registry at release) tagged with the app's version. kind/up.sh's build step pulls it (and its
 * -sandbox sibling) instead of building.
 */
export function publishedImage(env: NodeJS.ProcessEnv, appVersion: string): string {
  return env.KEEL_PUBLISHED_IMAGE || `ghcr.io/example/keel:${appVersion}`;
}
