// Who may set what on an agent, through the real web process (core enforces it; this checks the
// routes hand core the principal and answer in the error format): a member's API key cannot set a
// provider URL, a key secret, sandbox secrets or MCP servers (403 naming the fields), a member's
// edit keeps what an admin set, credentials are never read back, only http(s) URLs are stored.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, test } from "vitest";
import { createTestDatabase } from "@keel/test/db";
import { ADMIN, startServer, type RunningServer } from "./harness.js";

let server: RunningServer;
let drop: () => Promise<void>;
let adminKey = "";
let memberKey = "";
let viewerKey = "";
const tag = randomBytes(4).toString("hex");

async function call(key: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(server.url + path, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  server = await startServer(db.url);
  const login = await fetch(`${server.url}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const mint = async (role: string) => {
    const r = await fetch(`${server.url}/api/v1/api-keys`, {
      method: "POST",
      headers: { cookie, "x-csrf-token": csrfToken, "content-type": "application/json" },
      body: JSON.stringify({ name: `${role}-${tag}`, role }),
    });
    return ((await r.json()) as { key: string }).key;
  };
  [adminKey, memberKey, viewerKey] = [await mint("admin"), await mint("member"), await mint("viewer")];
});
afterAll(async () => {
  await server?.stop();
  await drop?.();
});

test("a member's key: protected agent fields are 403 naming them, other edits keep the admin's values; viewers read no credential", async () => {
  const mcpServers = [{ name: "gh", url: "https://mcp.example.com/mcp", allowTools: ["search"], headerSecrets: { Authorization: "GH_MCP_AUTH" } }];
  const created = await call(adminKey, "POST", "/api/v1/agents", {
    name: `trusted-${tag}`,
    model: "gpt-test",
    provider: { baseUrl: "https://llm.example.com/v1", apiKeySecret: "LLM_KEY" },
    sandboxPolicy: { secrets: ["DEPLOY_KEY"] },
    mcpServers,
  });
  expect(created.status).toBe(201);
  const id = created.body.id as string;

  const repoint = await call(memberKey, "PUT", `/api/v1/agents/${id}`, {
    model: "gpt-test",
    provider: { baseUrl: "https://attacker.example/v1", apiKeySecret: "LLM_KEY" },
  });
  expect(repoint.status).toBe(403);
  expect(repoint.body).toEqual({
    error: { code: "forbidden", message: expect.stringContaining("only an admin may set provider.baseUrl"), details: { fields: ["provider.baseUrl"] } },
  });
  const create = await call(memberKey, "POST", "/api/v1/agents", {
    name: `m-${tag}`,
    model: "gpt-test",
    sandboxPolicy: { secrets: ["DEPLOY_KEY"] },
    mcpServers: [],
  });
  expect(create.status).toBe(403);
  expect(create.body.error.details).toEqual({ fields: ["sandboxPolicy.secrets"] });

  // A member's edit that leaves the protected fields out: accepted, and they are kept.
  const edit = await call(memberKey, "PUT", `/api/v1/agents/${id}`, { model: "gpt-test-2", instructions: "member words" });
  expect(edit.status).toBe(200);
  const read = await call(viewerKey, "GET", `/api/v1/agents/${id}`);
  expect(read.body).toMatchObject({
    version: 2,
    model: "gpt-test-2",
    provider: { baseUrl: "https://llm.example.com/v1", apiKeySecret: "LLM_KEY" },
    sandboxPolicy: { secrets: ["DEPLOY_KEY"] },
    mcpServers,
  });

  expect((await call(viewerKey, "PUT", `/api/v1/agents/${id}`, { model: "x" })).status).toBe(403);
});

test("header values and non-http URLs are refused at save with a 422 naming the field", async () => {
  const plain = await call(adminKey, "POST", "/api/v1/agents", {
    name: `plain-${tag}`,
    model: "m",
    mcpServers: [{ name: "x", url: "https://mcp.example.com/mcp", allowTools: [], headers: { Authorization: "Bearer s3cr3t" } }],
  });
  expect(plain.status).toBe(422);
  expect(plain.text).toContain("headerSecrets");
  expect(plain.text).not.toContain("s3cr3t");
  for (const url of ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "not a url"]) {
    const r = await call(adminKey, "POST", "/api/v1/agents", { name: `u-${tag}`, model: "m", provider: { baseUrl: url } });
    expect(r.status, url).toBe(422);
    expect(r.body.error.details.issues[0].path, url).toBe("provider.baseUrl");
    const m = await call(adminKey, "POST", "/api/v1/agents", { name: `u-${tag}`, model: "m", mcpServers: [{ name: "x", url, allowTools: [] }] });
    expect(m.status, url).toBe(422);
  }
});
