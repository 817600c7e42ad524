// The OpenAPI 3.1 document of /api/v1 and /v1, generated from the route table
// (@keel/core/contract/api) by zod-openapi: the request and answer schemas in it are the ones the
// routes enforce and the typed client reads, so the document cannot drift from the code.
import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from "zod-openapi";
import { apiRoutes, type ApiRoute } from "@keel/core/contract/api";
import { ErrorBody, OpenAiErrorBody } from "@keel/core/contract/api-schemas";

function operation(r: ApiRoute): ZodOpenApiOperationObject {
  const json = (schema: unknown) => ({ "application/json": { schema } });
  const success =
    r.response === null
      ? { description: "done, no body" }
      : r.sse === "always"
        ? { description: "a Server-Sent Events stream", content: { "text/event-stream": { schema: r.response } } }
        : {
            description: r.sse === "optional" ? "the answer; a Server-Sent Events stream of chunks when the body asks stream: true" : "the answer",
            content: { ...json(r.response), ...(r.sse === "optional" ? { "text/event-stream": { schema: { type: "string" } } } : {}) },
          };
  const error = { description: "an error: code, message, details", content: json(r.errors === "openai" ? OpenAiErrorBody : ErrorBody) };
  return {
    operationId: `${r.method.toLowerCase()}${r.path.replace(/[^A-Za-z0-9]+(\w)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    summary: r.summary,
    ...(r.auth === "none" ? { security: [] } : { description: r.platform ? "Platform admins only (a team role is not enough)." : `Lowest role: ${r.role}.` }),
    ...(r.params || r.query || r.headers
      ? { requestParams: { ...(r.params ? { path: r.params } : {}), ...(r.query ? { query: r.query } : {}), ...(r.headers ? { header: r.headers } : {}) } }
      : {}),
    ...(r.body ? { requestBody: { required: true, content: json(r.body) } } : {}),
    responses: { [String(r.status)]: success, "4XX": error, "5XX": error },
  } as ZodOpenApiOperationObject;
}

let cached: ReturnType<typeof createDocument> | null = null;

export function openApiDocument() {
  if (cached) return cached;
  const paths: ZodOpenApiPathsObject = {};
  for (const r of apiRoutes) (paths[r.path] ??= {})[r.method.toLowerCase() as "get"] = operation(r);
  cached = createDocument({
    openapi: "3.1.0",
    info: { title: "Keel API", version: "1", description: "Generated from the route table in core/src/contract/api.ts." },
    components: {
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "kk_… API key" },
        cookie: {
          type: "apiKey",
          in: "cookie",
          name: "keel_session",
          description: "from POST /api/v1/auth/login; send X-CSRF-Token (the login's csrfToken) on state changes",
        },
      },
    },
    security: [{ apiKey: [] }, { cookie: [] }],
    paths,
  });
  return cached;
}
