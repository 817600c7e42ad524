// A real Keel for the desktop tests: the built web process (`next start`) on a test database copied
// from the run's template, an in-process demo-model worker, an admin API key and an agent whose
// calculator needs approval (the demo model calls it for "calculate …").
import { api } from "@keel/core/contract/api";
import type { ApiClient } from "@keel/core/contract/api-client";
import { createTestDatabase } from "@keel/test/db";
import { adminClient, startDemoWorker, startServer, type RunningServer } from "@keel/server/testing/harness";

export type Keel = {
  url: string;
  apiKey: string;
  agentId: string;
  server: RunningServer;
  databaseUrl: string;
  /** The typed client with the API key; answers are checked against the route table. */
  client: ApiClient;
  /** REST with the API key; answers status + parsed body (for bad requests and raw checks). */
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
  const { client, apiKey } = await adminClient(server.url, "desktop-tests");
  const k: Keel = {
    url: server.url,
    apiKey,
    client,
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
    newSession: async (title) => (await client.call(api.sessions.create, { body: { agentId: k.agentId, ...(title ? { title } : {}) } })).id,
    post: async (sessionId, content) => void (await client.call(api.sessions.messages, { params: { id: sessionId }, body: { content } })),
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
  k.agentId = (await client.call(api.agents.create, { body: { name: "calc-bot", model: "demo", tools: [{ name: "calculator", requiresApproval: true }] } })).id;
  return k;
}
