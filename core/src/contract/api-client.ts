// The one typed client of the REST API, written against the route table (./api.ts): the
// dashboard (cookie + CSRF), the desktop main process and the tests (API key) all call through
// it. fetch-based and browser-safe. A non-2xx answer throws ApiError with the server's code,
// message, details and status unchanged: callers branch on `code`, never on a re-mapped status.
import type { z } from "zod";
import type { ApiRoute } from "./api.js";

type In<T> = T extends z.ZodType ? z.input<T> : never;
/** What a call of route R takes: its path params, query, body and extra headers. */
export type CallInput<R extends ApiRoute> = (R extends { params: infer P extends z.ZodType } ? { params: In<P> } : { params?: undefined }) &
  (R extends { query: infer Q extends z.ZodType } ? { query?: In<Q> } : { query?: undefined }) &
  (R extends { body: infer B extends z.ZodType } ? { body: In<B> } : { body?: undefined }) & {
    headers?: Record<string, string>;
    signal?: AbortSignal;
  };
/** What a call of route R answers (undefined for 204). */
export type CallOutput<R extends ApiRoute> = R extends { response: infer S extends z.ZodType } ? z.output<S> : undefined;

type Issue = { path: string; message: string };

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** The 422 field issues, if any: `[{ path: "tools.0.name", message }]`. */
  get issues(): Issue[] {
    const i = this.details.issues;
    return Array.isArray(i) ? (i as Issue[]) : [];
  }
}

export type Credentials =
  /** `Authorization: Bearer kk_…`. */
  | { apiKey: string }
  /** A cookie session: the browser sends the cookie itself (`cookie` for Node callers); the CSRF token goes on state changes. */
  | { cookie?: string; csrfToken: () => string | null | Promise<string | null> };

export type ApiClientOptions = {
  /** "" in the browser (same origin), else `http://host:3000`. */
  baseUrl: string;
  credentials?: Credentials;
  /** The transport (global fetch by default): the desktop adds its deadline and error wording here. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Parse every answer with the route's response schema (the tests do; a drift then fails loudly). */
  validateResponses?: boolean;
};

/** `/api/v1/sessions/{id}` + { id } → `/api/v1/sessions/3f…`. */
export function fillPath(path: string, params: Record<string, unknown> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_m, name: string) => {
    const v = params[name];
    if (v === undefined || v === null) throw new TypeError(`no value for {${name}} in ${path}`);
    return encodeURIComponent(String(v));
  });
}

export class ApiClient {
  readonly baseUrl: string;
  constructor(private readonly o: ApiClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, "");
  }

  /** Calls a route and answers its JSON (typed by the table). */
  async call<R extends ApiRoute>(route: R, input: CallInput<R> = {} as CallInput<R>): Promise<CallOutput<R>> {
    const res = await this.send(route, input);
    const text = await res.text();
    if (route.response === null || res.status === 204) return undefined as CallOutput<R>;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      // A proxy's HTML page, or the web process restarting: say so instead of a JSON parse error.
      throw new ApiError(res.status, "bad_response", `${route.method} ${route.path} answered ${res.status} without JSON`, {}, { cause: err });
    }
    if (this.o.validateResponses) {
      const r = route.response.safeParse(data);
      if (!r.success)
        throw new ApiError(res.status, "response_mismatch", `${route.method} ${route.path} answered outside its schema`, {
          issues: r.error.issues.map((i) => ({ path: i.path.join("."), message: i.message })),
          body: data,
        });
      return r.data as CallOutput<R>;
    }
    return data as CallOutput<R>;
  }

  /** Sends a call and answers the Response itself (a 2xx one): for streams (SSE) and headers. */
  async send<R extends ApiRoute>(route: R, input: CallInput<R> = {} as CallInput<R>): Promise<Response> {
    const i = input as {
      params?: Record<string, unknown>;
      query?: Record<string, unknown>;
      body?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    };
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(i.query ?? {})) if (v !== undefined && v !== null && v !== "") qs.set(k, String(v));
    const url = `${this.baseUrl}${fillPath(route.path, i.params)}${qs.size ? `?${qs}` : ""}`;
    const headers: Record<string, string> = { accept: route.sse === "always" ? "text/event-stream" : "application/json" };
    if (i.body !== undefined) headers["content-type"] = "application/json";
    const c = this.o.credentials;
    if (c && "apiKey" in c) headers.authorization = `Bearer ${c.apiKey}`;
    else if (c) {
      if (c.cookie) headers.cookie = c.cookie;
      const token = route.method === "GET" ? null : await c.csrfToken();
      if (token) headers["x-csrf-token"] = token;
    }
    Object.assign(headers, i.headers);
    const res = await (this.o.fetch ?? fetch)(url, {
      method: route.method,
      headers,
      body: i.body === undefined ? undefined : JSON.stringify(i.body),
      signal: i.signal,
    });
    if (!res.ok) throw await errorOf(res);
    return res;
  }
}

/** The server's error body as it was sent (Keel's and OpenAI's shapes carry the same fields). */
export async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  let e: { code?: unknown; message?: unknown; details?: unknown } | undefined;
  try {
    e = (JSON.parse(text) as { error?: typeof e }).error;
  } catch {
    /* not JSON: a proxy's page */
  }
  if (!e || typeof e.code !== "string") return new ApiError(res.status, "bad_response", `${res.status} ${res.statusText || "unexpected response"}`);
  const details = e.details && typeof e.details === "object" ? (e.details as Record<string, unknown>) : {};
  return new ApiError(res.status, e.code, typeof e.message === "string" ? e.message : res.statusText, details);
}
