// Bundles the sandbox runtime (sandbox/src/main.ts, Node built-ins only) into
// sandbox/dist/runtime.mjs: the file the local driver starts inside every bubblewrap sandbox and
// the Kubernetes image copies in. Part of `npm run setup`.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
await build({
  entryPoints: [path.join(root, "sandbox/src/main.ts")],
  outfile: path.join(root, "sandbox/dist/runtime.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "warning",
});
