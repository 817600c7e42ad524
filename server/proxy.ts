// Runs before routing: a path that is not valid percent-encoding gets a 400 JSON error (Next would
// answer a bare 500 while decoding its params), and on the API's paths a method a route does
// not have gets the API's JSON error (405 method_not_allowed, with Allow) instead of Next's empty
// 405. Everything else passes through. Answers made here carry the security headers themselves.
import { NextResponse, type NextRequest } from "next/server";
import type { ApiRoute } from "./src/api-routes.cjs";
import { allowedMethods, compileRouteTable } from "./src/method-guard";
import { validRequestId } from "./src/request-id";
import { SECURITY_HEADERS } from "./src/security-headers.cjs";

// Inlined at build time by next.config.ts (env), read from app/ by src/api-routes.cjs.
const table = compileRouteTable(JSON.parse(process.env.KEEL_API_ROUTE_TABLE ?? "[]") as ApiRoute[]);

export function proxy(req: NextRequest): NextResponse {
  const requestId = () => validRequestId(req.headers.get("x-request-id")) ?? crypto.randomUUID();
  if (!validPercentEncoding(req.nextUrl.pathname)) {
    return secured(
      NextResponse.json(
        { error: { code: "bad_encoding", message: "the path is not valid percent-encoded UTF-8", details: {} } },
        { status: 400, headers: { "x-request-id": requestId() } },
      ),
    );
  }
  const allowed = allowedMethods(table, req.nextUrl.pathname);
  if (!allowed || allowed.includes(req.method)) return NextResponse.next();
  return secured(
    NextResponse.json(
      {
        error: {
          code: "method_not_allowed",
          message: `${req.method} is not allowed here; this route answers ${allowed.join(", ")}`,
          details: { method: req.method, allowed },
        },
      },
      { status: 405, headers: { allow: allowed.join(", "), "x-request-id": requestId() } },
    ),
  );
}

function validPercentEncoding(pathname: string): boolean {
  try {
    decodeURIComponent(pathname);
    return true;
  } catch {
    return false;
  }
}

function secured(res: NextResponse): NextResponse {
  for (const h of SECURITY_HEADERS) res.headers.set(h.key, h.value);
  return res;
}

// Every path but Next's own static files: a malformed percent-encoding on a page path (/sessions/%E0)
// was a bare 500 too. The method guard only answers for the API's paths (allowedMethods is null elsewhere).
export const config = { matcher: ["/((?!_next/static|_next/image|favicon.ico).*)"] };
