// Which methods a path of the API allows, from the route table (src/api-routes.cjs). Next answers a
// method a route file does not export with a bare 405 before any of our code runs; server/proxy.ts
// asks this first so the client gets our JSON error and an Allow header instead.
import type { ApiRoute } from "./api-routes.cjs";

type Compiled = { re: RegExp; allowed: string[] };

export function compileRouteTable(routes: readonly ApiRoute[]): Compiled[] {
  return routes
    .filter((r) => !r.template.includes("[..."))
    .map((r) => {
      const re = new RegExp(
        `^${r.template
          .split("/")
          .map((seg) => (/^\[\w+\]$/.test(seg) ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
          .join("/")}/?$`,
      );
      // Next answers HEAD for a GET route and OPTIONS for any route by itself.
      const allowed = new Set<string>([...r.methods, "OPTIONS"]);
      if (allowed.has("GET")) allowed.add("HEAD");
      return { re, allowed: [...allowed].sort() };
    });
}

/** The methods the path allows, or null when no route (but the catch-all 404) serves it. */
export function allowedMethods(table: readonly Compiled[], pathname: string): string[] | null {
  const hits = table.filter((r) => r.re.test(pathname));
  if (hits.length === 0) return null;
  return [...new Set(hits.flatMap((r) => r.allowed))].sort();
}
