// The API's route table, read from the filesystem: every app/api/v1/** and app/v1/** route.ts with
// the HTTP methods it exports. Plain CommonJS because next.config.ts reads it when Next loads its
// config (compiled to CommonJS by `keel web`, so an ES module cannot be required there), to give
// server/proxy.ts the table; the route-matrix tests read it too: one reader of the truth.
"use strict";
const { readdirSync, readFileSync } = require("node:fs");
const path = require("node:path");

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const ROOTS = ["app/api/v1", "app/v1"];

/** [{ template: "/api/v1/sessions/[id]", methods: ["DELETE", "GET"] }, …], sorted by template. */
function readApiRoutes(serverDir) {
  const out = [];
  for (const root of ROOTS) {
    for (const file of walk(path.join(serverDir, root))) {
      const template = "/" + path.relative(path.join(serverDir, "app"), path.dirname(file)).split(path.sep).join("/");
      out.push({ template, methods: exportedMethods(readFileSync(file, "utf8")) });
    }
  }
  return out.sort((a, b) => (a.template < b.template ? -1 : a.template > b.template ? 1 : 0));
}

function walk(dir) {
  const files = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files.push(...walk(p));
    else if (/^route\.(ts|tsx|js)$/.test(e.name)) files.push(p);
  }
  return files;
}

/** `export const GET =`, `export async function POST(`, `export { x as PUT, … }`. */
function exportedMethods(src) {
  const found = new Set();
  const alt = HTTP_METHODS.join("|");
  for (const m of src.matchAll(new RegExp(`export\\s+(?:const|let|var|(?:async\\s+)?function)\\s+(${alt})\\b`, "g"))) found.add(m[1]);
  for (const block of src.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const spec of block[1].split(",")) {
      const name = spec
        .trim()
        .split(/\s+as\s+/)
        .pop()
        .trim();
      if (HTTP_METHODS.includes(name)) found.add(name);
    }
  }
  return [...found].sort();
}

module.exports = { HTTP_METHODS, readApiRoutes, exportedMethods };
