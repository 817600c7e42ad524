// AgentChat: posting to an agent addressed by name (the OpenAI-compatible endpoint's model). Every
// refusal happens in open(), before a session exists; post() appends the message and queues a run.
import { beforeAll, expect, test } from "vitest";
import { AgentChat } from "../src/agent-chat.js";
import type { Principal } from "../src/access/principal.js";
import { NotFoundError, ValidationError } from "../src/errors.js";
import { readAllEvents } from "../src/engine/events.js";
import { useFixture } from "./fixture.js";

const f = useFixture();
let chat: AgentChat;
let p: Principal;
let otherAgentId: string;
beforeAll(async () => {
  chat = new AgentChat({ pool: f.pool, tenancy: f.tenancy, engine: f.client });
  p = { teamId: f.teamId, role: "member", actor: "user:test@example.com", userId: null, apiKeyId: null };
  otherAgentId = (await f.tenancy.createAgent(f.teamId, { name: "other", model: "demo" })).id;
});

const sessionCount = async () => Number((await f.pool.query<{ n: string }>("SELECT count(*) AS n FROM sessions WHERE team_id = $1", [f.teamId])).rows[0]!.n);

test("without a session: a new one of the named agent, titled by the message; post appends it and queues a run", async () => {
  const long = "Summarize the quarterly report. ".repeat(10);
  const open = await chat.open(p, { agent: "helper", sessionId: null, content: long });
  const s = await f.tenancy.getSession(f.teamId, open.sessionId);
  expect(s).toMatchObject({ agentId: f.agentId, title: long.slice(0, 80) });
  expect(open.agentId).toBe(f.agentId);
  expect(await readAllEvents(f.pool, open.sessionId)).toEqual([]); // open posts nothing
  const posted = await open.post();
  const events = await readAllEvents(f.pool, open.sessionId);
  expect(events.map((e) => [e.type, e.runId, e.seq])).toEqual([["user_message", posted.runId, posted.seq]]);
  expect(JSON.parse(events[0]!.payloadText)).toEqual({ role: "user", content: long });
  expect((await f.client.getRun({ teamId: f.teamId, runId: posted.runId })).status).toBe("queued");
});

test("structured content: the title is the first text part", async () => {
  const open = await chat.open(p, {
    agent: "helper",
    sessionId: null,
    content: [
      { type: "text", text: "first part" },
      { type: "text", text: "second" },
    ],
  });
  expect((await f.tenancy.getSession(f.teamId, open.sessionId)).title).toBe("first part");
});

test("with a session of the agent: that session, and a repeated idempotency key posts once", async () => {
  const sessionId = await f.newSession();
  const first = await chat.open(p, { agent: "helper", sessionId, content: "hello", idempotencyKey: "k-1" });
  expect(first.sessionId).toBe(sessionId);
  const a = await first.post();
  const b = await (await chat.open(p, { agent: "helper", sessionId, content: "hello", idempotencyKey: "k-1" })).post();
  expect(b).toMatchObject({ duplicate: true, runId: a.runId, seq: a.seq });
  expect((await readAllEvents(f.pool, sessionId)).length).toBe(1);
});

test("refusals leave no session behind: unknown agent, bad idempotency key, another agent's session, another team's session", async () => {
  const sessionsBefore = await sessionCount();
  await expect(chat.open(p, { agent: "no-such-agent", sessionId: null, content: "hi" })).rejects.toThrow(NotFoundError);
  await expect(chat.open(p, { agent: "no-such-agent", sessionId: null, content: "hi" })).rejects.toMatchObject({
    status: 404,
    details: { modelId: "no-such-agent" },
  });
  await expect(chat.open(p, { agent: "helper", sessionId: null, content: "hi", idempotencyKey: "k".repeat(201) })).rejects.toThrow(ValidationError);
  await expect(chat.open(p, { agent: "helper", sessionId: null, content: "hi", idempotencyKey: "" })).rejects.toThrow(ValidationError);
  expect(await sessionCount()).toBe(sessionsBefore);

  const othersSession = (await f.tenancy.createSession(f.teamId, { agentId: otherAgentId })).id;
  await expect(chat.open(p, { agent: "helper", sessionId: othersSession, content: "hi" })).rejects.toMatchObject({
    code: "validation_failed",
    details: { sessionId: othersSession },
  });
  const team = await f.tenancy.createTeam({ slug: "elsewhere", name: "Elsewhere" });
  const foreignAgent = (await f.tenancy.createAgent(team.id, { name: "helper", model: "demo" })).id;
  const foreign = (await f.tenancy.createSession(team.id, { agentId: foreignAgent })).id;
  await expect(chat.open(p, { agent: "helper", sessionId: foreign, content: "hi" })).rejects.toThrow(NotFoundError);
  await expect(chat.open(p, { agent: "helper", sessionId: "not-a-session", content: "hi" })).rejects.toThrow(NotFoundError);
  expect(await readAllEvents(f.pool, foreign)).toEqual([]);
});
