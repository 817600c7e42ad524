// Every API route handler of the web process, read from the filesystem (app/api/v1/** and
// app/v1/**) by src/api-routes.cjs (the table server/proxy.ts answers 405s from), with the HTTP
// methods each route.ts exports. The isolation and bad-input suites
// compare their matrices against this list, so a new route or method without a matrix entry
// fails them instead of going untested.
import { readApiRoutes, type Method } from "../src/api-routes.cjs";
import { serverDir } from "./harness.js";

export type { Method };

/** "METHOD /template", e.g. "POST /api/v1/sessions/[id]/messages". */
export type RouteKey = `${Method} ${string}`;

export function apiRoutes(): RouteKey[] {
  return readApiRoutes(serverDir)
    .flatMap((r) => r.methods.map((m): RouteKey => `${m} ${r.template}`))
    .sort();
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
