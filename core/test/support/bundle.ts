// One entry file bundled into one .mjs that plain `node` runs (real worker processes for the
// crash, resume, shutdown and sandbox tests, and the bench's workers). Keel's own packages
// (@keel/*, TypeScript source) are bundled in; every other package stays an import, resolved from
// node_modules at run time as in production.
import { build, type Plugin } from "esbuild";

const externalExceptKeel: Plugin = {
  name: "external-except-keel",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.path.startsWith("@keel/") ? undefined : { path: args.path, external: true }));
  },
};

export async function bundleForNode(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    plugins: [externalExceptKeel],
    logLevel: "warning",
  });
}
