// Bundles the runtime into one ESM file with no dependencies (Node built-ins only), the file the
// local driver bind-mounts into each sandbox and the Kubernetes image copies in.
import path from "node:path";
import { build } from "esbuild";

export const runtimeEntry = path.join(import.meta.dirname, "main.ts");

export async function buildRuntime(outfile: string): Promise<string> {
  await build({ entryPoints: [runtimeEntry], bundle: true, platform: "node", format: "esm", target: "node20", outfile, logLevel: "warning" });
  return outfile;
}
