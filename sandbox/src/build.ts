// Bundles the runtime into one ESM file with no dependencies (Node built-ins only), the file the
// local driver bind-mounts into each sandbox and the Kubernetes image copies in; and, beside it,
// the host-side egress proxy (egress-proxy.mjs, proxy-chain bundled in) the local driver starts
// for sandboxes with an egress allow-list.
import path from "node:path";
import { build } from "esbuild";

export const runtimeEntry = path.join(import.meta.dirname, "main.ts");
export const egressProxyEntry = path.join(import.meta.dirname, "egress-main.ts");

/** Builds `outfile` (the runtime) and `egress-proxy.mjs` in the same directory. */
export async function buildRuntime(outfile: string): Promise<string> {
  // keepNames: proxy-chain recognises its RequestError by class name.
  const common = { bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning", keepNames: true } as const;
  // proxy-chain is CommonJS: give the ESM bundle a require() for its Node built-ins.
  const banner = { js: "import { createRequire as __keelRequire } from 'node:module'; const require = __keelRequire(import.meta.url);" };
  await Promise.all([
    build({ ...common, entryPoints: [runtimeEntry], outfile }),
    build({ ...common, entryPoints: [egressProxyEntry], outfile: path.join(path.dirname(outfile), "egress-proxy.mjs"), banner }),
  ]);
  return outfile;
}
