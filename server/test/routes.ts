// Every API route handler of the web process, read from the filesystem (app/api/v1/** and
// app/v1/**), with the HTTP methods each route.ts exports. The isolation and bad-input suites
// compare their matrices against this list, so a new route or method without a matrix entry
// fails them instead of going untested.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { serverDir } from "./harness.js";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
export type Method = (typeof HTTP_METHODS)[number];

/** "METHOD /template", e.g. "POST /api/v1/sessions/[id]/messages". */
export type RouteKey = `${Method} ${string}`;

const ROOTS = ["app/api/v1", "app/v1"];

export function apiRoutes(): RouteKey[] {
  const out: RouteKey[] = [];
  for (const root of ROOTS) {
    for (const file of walk(path.join(serverDir, root))) {
      const template = "/" + path.relative(path.join(serverDir, "app"), path.dirname(file)).split(path.sep).join("/");
      for (const m of exportedMethods(readFileSync(file, "utf8"))) out.push(`${m} ${template}`);
    }
  }
  return out.sort();
}

function walk(dir: string): string[] {
  const files: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files.push(...walk(p));
    else if (/^route\.(ts|tsx|js)$/.test(e.name)) files.push(p);
  }
  return files;
}

/** `export const GET =`, `export async function POST(`, `export { x as PUT, … }`. */
export function exportedMethods(src: string): Method[] {
  const found = new Set<Method>();
  const alt = HTTP_METHODS.join("|");
  for (const m of src.matchAll(new RegExp(`export\\s+(?:const|let|var|(?:async\\s+)?function)\\s+(${alt})\\b`, "g"))) found.add(m[1] as Method);
  for (const block of src.matchAll(/export\s*\{([^}]*)\}/g)) {
    for (const spec of block[1]!.split(",")) {
      const name = spec.trim().split(/\s+as\s+/).pop()!.trim();
      if ((HTTP_METHODS as readonly string[]).includes(name)) found.add(name as Method);
    }
  }
  return [...found].sort();
}

/** Fills a route template's [params] ([...rest] gets a path no route has). */
export function fill(template: string, params: Record<string, string>): string {
  return template.replace(/\[(\.\.\.)?(\w+)\]/g, (_m, rest: string | undefined, name: string) => {
    if (rest) return params[name] ?? "no-such-route/at-all";
    const v = params[name];
    if (v === undefined) throw new Error(`no value for [${name}] in ${template}`);
    return encodeURIComponent(v);
  });
}
