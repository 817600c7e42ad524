// A real Keel for the desktop tests: the built web process (`next start`) on a test database copied
// from the run's template, an in-process demo-model worker, an admin API key and an agent whose
// calculator needs approval (the demo model calls it for "calculate …").
import { createTestDatabase } from "../../test/db.ts";
import { ADMIN, startDemoWorker, startServer, type RunningServer } from "../../server/test/harness.ts";

export type Keel = {
  url: string;
  apiKey: string;
  agentId: string;
  server: RunningServer;
  databaseUrl: string;
  /** REST with the API key; answers status + parsed body. */
  api: (path: string, init?: { method?: string; body?: unknown; headers?: Record<string, string> }) => Promise<{ status: number; body: any }>;
  newSession: (title?: string) => Promise<string>;
  post: (sessionId: string, content: string) => Promise<void>;
  /** Stops the web process and starts a new one on the same port (a rolling restart, as a client sees it). */
  restartWeb: () => Promise<void>;
  stop: () => Promise<void>;
};

export async function startKeel(): Promise<Keel> {
  const db = await createTestDatabase();
  const server = await startServer(db.url);
  const worker = await startDemoWorker(db.url);
  const login = await fetch(`${server.url}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ADMIN) });
  if (login.status !== 200) throw new Error(`login failed: ${login.status}`);
  const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  const csrf = ((await login.json()) as { csrfToken: string }).csrfToken;
  const keyRes = await fetch(`${server.url}/api/v1/api-keys`, {
    method: "POST",
    headers: { "content-type": "application/json", cookie, "x-csrf-token": csrf },
    body: JSON.stringify({ name: "desktop-tests", role: "admin" }),
  });
  const apiKey = ((await keyRes.json()) as { key: string }).key;
  const k: Keel = {
    url: server.url,
    apiKey,
    agentId: "",
    server,
    databaseUrl: db.url,
    api: async (p, init = {}) => {
      const res = await fetch(`${k.url}${p}`, {
        method: init.method ?? (init.body === undefined ? "GET" : "POST"),
        headers: { authorization: `Bearer ${apiKey}`, ...(init.body === undefined ? {} : { "content-type": "application/json" }), ...init.headers },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    newSession: async (title) => {
      const s = await k.api("/api/v1/sessions", { body: { agentId: k.agentId, ...(title ? { title } : {}) } });
      if (s.status !== 201) throw new Error(`create session: ${s.status} ${JSON.stringify(s.body)}`);
      return s.body.id as string;
    },
    post: async (sessionId, content) => {
      const r = await k.api(`/api/v1/sessions/${sessionId}/messages`, { body: { content } });
      if (r.status !== 202) throw new Error(`post message: ${r.status} ${JSON.stringify(r.body)}`);
    },
    restartWeb: async () => {
      await k.server.stop();
      k.server = await startServer(db.url, {}, Number(new URL(k.url).port));
    },
    stop: async () => {
      await worker.stop();
      await k.server.stop();
      await db.drop();
    },
  };
  const agent = await k.api("/api/v1/agents", { body: { name: "calc-bot", model: "demo", tools: [{ name: "calculator", requiresApproval: true }] } });
  if (agent.status !== 201) throw new Error(`create agent: ${agent.status} ${JSON.stringify(agent.body)}`);
  k.agentId = agent.body.id;
  return k;
}
