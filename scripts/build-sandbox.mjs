// Bundles the sandbox runtime (sandbox/src/main.ts, Node built-ins only) into
// sandbox/dist/runtime.mjs: the file the local driver starts inside every bubblewrap sandbox and
// the Kubernetes image copies in; and the host-side egress proxy into sandbox/dist/egress-proxy.mjs.
// Part of `npm run setup`.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register();
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const { buildRuntime } = await import(path.join(root, "sandbox/src/build.ts"));
await buildRuntime(path.join(root, "sandbox/dist/runtime.mjs"));
