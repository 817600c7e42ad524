// Runs before routing for the API paths: a method a route does not have gets the API's JSON error
// (405 method_not_allowed, with Allow) instead of Next's empty 405. Everything else passes through.
import { NextResponse, type NextRequest } from "next/server";
import type { ApiRoute } from "./src/api-routes.cjs";
import { allowedMethods, compileRouteTable } from "./src/method-guard";
import { validRequestId } from "./src/request-id";

// Inlined at build time by next.config.ts (env), read from app/ by src/api-routes.cjs.
const table = compileRouteTable(JSON.parse(process.env.KEEL_API_ROUTE_TABLE ?? "[]") as ApiRoute[]);

export function proxy(req: NextRequest): NextResponse {
  const allowed = allowedMethods(table, req.nextUrl.pathname);
  if (!allowed || allowed.includes(req.method)) return NextResponse.next();
  const requestId = validRequestId(req.headers.get("x-request-id")) ?? crypto.randomUUID();
  return NextResponse.json(
    { error: { code: "method_not_allowed", message: `${req.method} is not allowed here; this route answers ${allowed.join(", ")}`, details: { method: req.method, allowed } } },
    { status: 405, headers: { allow: allowed.join(", "), "x-request-id": requestId } },
  );
}

export const config = { matcher: ["/api/v1/:path*", "/v1/:path*"] };
