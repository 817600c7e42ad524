// Tenancy on plain SQL (core/README.md "Data access"): the writes Prisma used to make, with the
// same answers, and version numbering that holds under concurrent edits.
import { expect, test } from "vitest";
import { ConflictError, NotFoundError } from "../src/errors.js";
import { useFixture } from "./fixture.js";

const f = useFixture();

test("a duplicate team slug or agent name is a Conflict with its code; another team's agent is NotFound", async () => {
  await expect(f.tenancy.createTeam({ slug: "acme", name: "Again" })).rejects.toMatchObject({ code: "team_exists" });
  await expect(f.tenancy.createAgent(f.teamId, { name: "helper", model: "demo" })).rejects.toThrow(ConflictError);
  const other = await f.tenancy.createTeam({ slug: "other", name: "Other" });
  await expect(f.tenancy.createSession(other.id, { agentId: f.agentId })).rejects.toThrow(NotFoundError);
});

test("an agent and its first version are written together; JSON fields (arrays included) round-trip", async () => {
  const tools = ["echo", { name: "exec", requiresApproval: true }];
  const a = await f.tenancy.createAgent(f.teamId, {
    name: "json",
    model: "m",
    tools,
    mcpServers: [{ name: "gh", url: "https://mcp.example/x", allowTools: ["a"] }],
  });
  const { rows } = await f.pool.query("SELECT version, tools, mcp_servers, provider, sandbox_policy FROM agent_versions WHERE agent_id = $1", [a.id]);
  expect(rows).toEqual([
    { version: 1, tools, mcp_servers: [{ name: "gh", url: "https://mcp.example/x", allowTools: ["a"] }], provider: {}, sandbox_policy: {} },
  ]);
});

test("concurrent edits number their versions one after another; a session pins the current one", async () => {
  const a = await f.tenancy.createAgent(f.teamId, { name: "busy", model: "m" });
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => f.tenancy.updateAgent(f.teamId, a.id, { model: `m${i}` })));
  expect(results.map((r) => r.version).sort()).toEqual([2, 3, 4, 5, 6, 7]);
  const s = await f.tenancy.createSession(f.teamId, { agentId: a.id, title: "t" });
  expect(s).toMatchObject({ teamId: f.teamId, agentId: a.id, agentVersion: 7, status: "idle", lastSeq: 0n, title: "t" });
  expect(s.createdAt).toBeInstanceOf(Date);
  expect(await f.tenancy.getSession(f.teamId, s.id)).toEqual(s);
});
