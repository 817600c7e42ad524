// `@keel/server/build`: builds the dashboard (`next build --webpack`) unless the build is newer than every
// source file of server/ and core/src. Used by `npm start`, the test run's global setup and the
// server tests, so a build happens once and only when needed (~1 min on 2 cores).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const serverDir = path.join(root, "server");

function newestMtime(dir) {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (["node_modules", ".next", "generated", "test", "tsconfig.tsbuildinfo"].includes(e.name)) continue;
    const p = path.join(dir, e.name);
    max = Math.max(max, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return max;
}

export function ensureWebBuild() {
  const buildId = path.join(serverDir, ".next/BUILD_ID");
  const sources = Math.max(newestMtime(serverDir), newestMtime(path.join(root, "core/src")));
  if (existsSync(buildId) && statSync(buildId).mtimeMs > sources) return { rebuilt: false, ms: 0 };
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(root, "node_modules/next/dist/bin/next"), "build", "--webpack"], {
    cwd: serverDir,
    encoding: "utf8",
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  if (r.status !== 0) throw new Error(`next build failed:\n${r.stdout}\n${r.stderr}`);
  return { rebuilt: true, ms: Date.now() - t0 };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = ensureWebBuild();
  process.stdout.write(r.rebuilt ? `dashboard built in ${Math.round(r.ms / 1000)} s\n` : "dashboard build is up to date\n");
}
