import path from "node:path";
import type { NextConfig } from "next";
import { createRequire } from "node:module";

// By absolute path: `keel web` loads this file from a string whose relative requires resolve
// against the process's working directory, not this folder.
const requireHere = createRequire(path.join(import.meta.dirname, "next.config.ts"));
const { readApiRoutes } = requireHere(path.join(import.meta.dirname, "src/api-routes.cjs")) as typeof import("./src/api-routes.cjs");
const { SECURITY_HEADERS } = requireHere(path.join(import.meta.dirname, "src/security-headers.cjs")) as typeof import("./src/security-headers.cjs");

const config: NextConfig = {
  // The container image (Dockerfile) ships .next/standalone: the server build plus only the
  // node_modules files it uses (traced), not the whole install.
  output: "standalone",
  // @keel/core (and @keel/sandbox, which it imports) is TypeScript source in the monorepo (NodeNext style: `./x.js` names `./x.ts`);
  // Next compiles it with the app. Turbopack (16.4) cannot map `.js` to `.ts`, so we build with
  // webpack (`next build --webpack`) and its extensionAlias.
  transpilePackages: ["@keel/core", "@keel/sandbox"],
  // Node-only packages (native/WASM loading, worker threads) stay plain imports at run time.
  serverExternalPackages: ["pg", "pino", "prom-client"],
  // SSE must not sit in a gzip buffer; a reverse proxy compresses if wanted.
  compress: false,
  // The API's route table for proxy.ts (a JSON 405 for a method a route does not have).
  env: { KEEL_API_ROUTE_TABLE: JSON.stringify(readApiRoutes(import.meta.dirname)) },
  poweredByHeader: false,
  // CSP, frame-ancestors, nosniff, Referrer-Policy on every page and API answer (src/security-headers.ts).
  headers: async () => [{ source: "/:path*", headers: [...SECURITY_HEADERS] }],
  outputFileTracingRoot: path.resolve(import.meta.dirname, ".."),
  webpack: (cfg: { resolve: { extensionAlias?: Record<string, string[]> } }) => {
    cfg.resolve.extensionAlias = { ".js": [".ts", ".tsx", ".js"], ".mjs": [".mts", ".mjs"] };
    return cfg;
  },
};

export default config;
