// A real MCP server (the official SDK's McpServer + StreamableHTTPServerTransport, stateful
// sessions) on loopback, for testing core/src/agent/mcp.ts. It records what clients asked for, and
// its `slow` tool waits until the client cancels it, so tests synchronise on events, not sleeps.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

export type TestMcpServer = {
  url: string;
  /** JSON-RPC methods received, in order (initialize, tools/list, tools/call, notifications/…). */
  methods: string[];
  /** Authorization header of every POST. */
  authorizations: (string | undefined)[];
  /** Resolves when the `slow` tool has started; then with its cancellation when the client aborts. */
  slowStarted: Promise<void>;
  slowCancelled: Promise<void>;
  /** Drop every session, as a restarted server would: clients get 404 and must reconnect. */
  forgetSessions(): Promise<void>;
  close(): Promise<void>;
};

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function buildServer(slow: { started: () => void; cancelled: () => void }): McpServer {
  const server = new McpServer({ name: "keel-test-mcp", version: "1.0.0" });
  server.registerTool(
    "add",
    { description: "Adds two numbers.", inputSchema: { a: z.number(), b: z.number() }, annotations: { idempotentHint: true } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }),
  );
  server.registerTool("fail", { description: "Always fails.", inputSchema: { why: z.string() } }, async ({ why }) => ({
    isError: true,
    content: [{ type: "text", text: `widget broken: ${why}` }],
  }));
  server.registerTool("secret_op", { description: "Not for agents.", annotations: { destructiveHint: true } }, async () => ({
    content: [{ type: "text", text: "secret done" }],
  }));
  server.registerTool("stats", { description: "Structured result.", annotations: { readOnlyHint: true }, outputSchema: { count: z.number() } }, async () => ({
    content: [{ type: "text", text: "counted" }],
    structuredContent: { count: 3 },
  }));
  // State per MCP session (as a stateful server keeps it): what one client session stores, only it reads back.
  let note: string | null = null;
  server.registerTool("remember", { description: "Stores a note in this MCP session.", inputSchema: { note: z.string() } }, async (a) => {
    note = a.note;
    return { content: [{ type: "text", text: "stored" }] };
  });
  server.registerTool("recall", { description: "Reads this MCP session's note.", annotations: { readOnlyHint: true } }, async () => ({
    content: [{ type: "text", text: note ?? "(no note)" }],
  }));
  server.registerTool("slow", { description: "Runs until cancelled." }, async (extra) => {
    slow.started();
    await new Promise<void>((resolve) => {
      if (extra.signal.aborted) resolve();
      extra.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    slow.cancelled();
    return { content: [{ type: "text", text: "cancelled" }] };
  });
  return server;
}

export async function startTestMcpServer(): Promise<TestMcpServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const methods: string[] = [];
  const authorizations: (string | undefined)[] = [];
  const started = deferred();
  const cancelled = deferred();

  const httpServer = http.createServer((req, res) => {
    void (async () => {
      let body: unknown;
      if (req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        for (const m of Array.isArray(body) ? body : [body]) if (m && typeof m === "object" && "method" in m) methods.push(String(m.method));
        authorizations.push(req.headers.authorization);
      }
      const sid = req.headers["mcp-session-id"];
      let transport = typeof sid === "string" ? transports.get(sid) : undefined;
      if (!transport) {
        if (sid !== undefined) {
          res
            .writeHead(404, { "content-type": "application/json" })
            .end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null }));
          return;
        }
        const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => void transports.set(id, t),
        });
        t.onclose = () => {
          if (t.sessionId) transports.delete(t.sessionId);
        };
        await buildServer({ started: started.resolve, cancelled: cancelled.resolve }).connect(t);
        transport = t;
      }
      await transport.handleRequest(req, res, body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const { port } = httpServer.address() as AddressInfo;

  const forgetSessions = async () => {
    const all = [...transports.values()];
    transports.clear();
    await Promise.all(all.map((t) => t.close()));
  };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    methods,
    authorizations,
    slowStarted: started.promise,
    slowCancelled: cancelled.promise,
    forgetSessions,
    close: async () => {
      await forgetSessions();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    },
  };
}

/** A loopback URL nothing listens on: a port we bound and released. */
export async function closedPortUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}/mcp`;
}
