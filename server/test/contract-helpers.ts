// Round trips through the route table's schemas: the request is checked against the generated
// OpenAPI document before it is sent; the answer of the real server must have the entry's status
// and fit both the entry's zod schema and the document's JSON Schema (ajv, draft 2020-12, the
// dialect of OpenAPI 3.1). Each route called is recorded, so a test can demand all of them.
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsImport from "ajv-formats";
import { expect } from "vitest";
import { apiRoutes, type ApiRoute } from "@keel/core/contract/api";
import { ApiClient, type CallInput, type CallOutput } from "@keel/core/contract/api-client";
import { openApiDocument } from "../src/openapi";

const addFormats = addFormatsImport as unknown as (a: Ajv2020) => void;
type Param = { in: "path" | "query" | "header"; name: string; required?: boolean; schema: object };
type Operation = {
  parameters?: Param[];
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
};

export const routeKey = (r: ApiRoute) => `${r.method} ${r.path}`;

export class RoundTrips {
  readonly called = new Set<string>();
  private readonly doc = openApiDocument() as unknown as { paths: Record<string, Record<string, Operation>> };
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true });
  constructor() {
    addFormats(this.ajv);
  }

  /** Calls `route` with `client` and answers what it answered, after checking both sides. */
  async call<R extends ApiRoute>(client: ApiClient, route: R, input: CallInput<R> = {} as CallInput<R>): Promise<{ data: CallOutput<R>; res: Response }> {
    const op = this.doc.paths[route.path]![route.method.toLowerCase()]!;
    this.checkRequest(route, op, input as { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown });
    const res = await client.send(route, input);
    expect(res.status, `${routeKey(route)} status`).toBe(route.status);
    this.called.add(routeKey(route));
    if (route.sse === "always") {
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      return { data: undefined as CallOutput<R>, res };
    }
    const text = await res.text();
    if (route.response === null) {
      expect(text).toBe("");
      return { data: undefined as CallOutput<R>, res };
    }
    const data: unknown = JSON.parse(text);
    const parsed = route.response.safeParse(data);
    expect(parsed.success ? [] : parsed.error.issues, `${routeKey(route)} answer vs the table's schema: ${text.slice(0, 400)}`).toEqual([]);
    const schema = op.responses[String(route.status)]!.content!["application/json"]!.schema;
    this.expectValid(schema, data, `${routeKey(route)} answer vs openapi.json`);
    return { data: (parsed as { data: CallOutput<R> }).data, res };
  }

  /** Route entries never called through `call`. */
  missing(): string[] {
    return apiRoutes.map(routeKey).filter((k) => !this.called.has(k));
  }

  private checkRequest(route: ApiRoute, op: Operation, input: { params?: Record<string, unknown>; query?: Record<string, unknown>; body?: unknown }): void {
    for (const p of op.parameters ?? []) {
      const v = p.in === "path" ? input.params?.[p.name] : p.in === "query" ? input.query?.[p.name] : undefined;
      if (p.in === "header") continue;
      if (v === undefined) {
        expect(p.required ?? false, `${routeKey(route)} ${p.in} ${p.name} is required`).toBe(false);
        continue;
      }
      this.expectValid(p.schema, String(v), `${routeKey(route)} ${p.in} ${p.name} vs openapi.json`);
    }
    if (route.body) {
      this.expectValid(op.requestBody!.content["application/json"]!.schema, input.body, `${routeKey(route)} body vs openapi.json`);
      const parsed = route.body.safeParse(input.body);
      expect(parsed.success ? [] : parsed.error.issues, `${routeKey(route)} body vs the table's schema`).toEqual([]);
    }
  }

  private expectValid(schema: object, value: unknown, what: string): void {
    const validate = this.ajv.compile(schema);
    expect(validate(value) ? [] : validate.errors, what).toEqual([]);
  }
}

/** A client that checks every answer against the table, with an API key. */
export function keyClient(baseUrl: string, apiKey: string): ApiClient {
  return new ApiClient({ baseUrl, credentials: { apiKey }, validateResponses: true });
}
