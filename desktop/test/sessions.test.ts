// The sessions module against a real Keel (built web process, demo-model worker, Postgres), through
// the same IPC wrapper the app uses: connect errors, cursor pages, full history, a live follow
// through an approval, and a follow that survives a restart of the web process without a gap or
// a duplicate (Last-Event-ID).
import { afterAll, beforeAll, expect, test } from "vitest";
import { waitFor } from "@keel/test/db";
import { freePort } from "@keel/cli/embedded-postgres";
import { createHandlers, createMainServices, registerAll } from "../src/main/ipc.ts";
import { SessionsService } from "../src/main/sessions.ts";
import type { EventName, EventPayloads, KeelConnection, KeelEvent, Result } from "../src/shared/contract.ts";
import { startKeel, type Keel } from "./keel.ts";

let keel: Keel;
let sessions: SessionsService;
let call: (channel: string, ...args: unknown[]) => Promise<Result<any>>;
let conn: KeelConnection;
const emitted: { event: EventName; payload: any }[] = [];

async function value<T>(p: Promise<Result<T>>): Promise<T> {
  const r = await p;
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value;
}
// Payloads as the tests read them (the renderer parses them with @keel/core/view/session).
const followed = (sessionId: string): (KeelEvent & { payload: any })[] =>
  emitted.filter((e) => e.event === "sessions:event" && e.payload.sessionId === sessionId).map((e) => (e.payload as EventPayloads["sessions:event"]).event);
const states = (followId: string) =>
  emitted.filter((e) => e.event === "sessions:follow:state" && e.payload.followId === followId).map((e) => e.payload.state as string);
const seqs = (evs: { seq: string }[]) => evs.map((e) => Number(e.seq));
const gapless = (s: number[]) => s.length > 0 && s.every((n, i) => n === i + 1);

beforeAll(async () => {
  keel = await startKeel();
  sessions = new SessionsService({ emit: (event, payload) => void emitted.push({ event, payload }), reconnectBaseMs: 100, reconnectMaxMs: 500 });
  const listeners = new Map<string, (event: unknown, ...args: unknown[]) => Promise<unknown>>();
  registerAll((ch, fn) => listeners.set(ch, fn), createHandlers(undefined, { ...createMainServices(), sessions }));
  call = (channel, ...args) => listeners.get(channel)!({}, ...args) as Promise<Result<any>>;
  conn = await value(call("sessions:connect", { baseUrl: keel.url, apiKey: keel.apiKey }));
}, 300_000);

afterAll(async () => {
  await sessions?.close();
  await keel?.stop();
});

test("connect: a wrong key, a closed port and a malformed URL each say what is wrong", async () => {
  expect(conn).toMatchObject({ baseUrl: keel.url, role: "admin", actor: expect.stringMatching(/^api_key:kk_/) });
  expect(await call("sessions:connect", { baseUrl: keel.url, apiKey: "kk_not_a_real_key" })).toMatchObject({
    ok: false,
    error: { code: "unauthorized", status: 401, message: expect.stringContaining("rejected the API key") },
  });
  const closed = `http://127.0.0.1:${await freePort()}`;
  expect(await call("sessions:connect", { baseUrl: closed, apiKey: keel.apiKey })).toMatchObject({
    ok: false,
    error: { code: "keel_unreachable", message: expect.stringMatching(new RegExp(`cannot reach Keel at ${closed}: .*port-forward`)) },
  });
  expect(await call("sessions:connect", { baseUrl: "localhost:3000", apiKey: "secret" })).toMatchObject({
    ok: false,
    error: { code: "invalid_input", message: expect.stringMatching(/baseUrl: must be an http\(s\) URL.*apiKey: must be a Keel API key/) },
  });
  expect(await call("sessions:list", { connection: "gone" })).toMatchObject({ ok: false, error: { code: "not_connected" } });
});

test("lists sessions in cursor pages: every session once, newest first", async () => {
  const ids = [];
  for (const t of ["page-a", "page-b", "page-c"]) ids.push(await keel.newSession(t));
  const first = await value(call("sessions:list", { connection: conn.id, limit: 2 }));
  expect(first.sessions).toHaveLength(2);
  expect(first.nextCursor).toBeTruthy();
  const rest = await value(call("sessions:list", { connection: conn.id, limit: 200, cursor: first.nextCursor }));
  const all = [...first.sessions, ...rest.sessions].map((s) => s.id);
  expect(new Set(all).size).toBe(all.length);
  expect(all.slice(0, 3)).toEqual(ids.reverse());
  expect(await call("sessions:list", { connection: conn.id, cursor: "garbage" })).toMatchObject({
    ok: false,
    error: { code: "validation_failed", status: 422, message: expect.stringContaining("cursor") },
  });
});

test("follows a session live through an approval; history and the live feed agree", async () => {
  const id = await keel.newSession("approval");
  const { followId } = await value(call("sessions:follow", { connection: conn.id, sessionId: id }));
  await keel.post(id, "calculate 6*7");
  const asked = await waitFor(() => followed(id).find((e) => e.type === "approval_requested"), { what: "approval_requested", timeoutMs: 30_000 });
  // The run waits for the approval: a message posted with onBusy=reject is refused, and the
  // server's code, status and details reach the renderer unchanged (once mapped to "conflict").
  expect(await call("sessions:post", { connection: conn.id, sessionId: id, content: "are you there?", onBusy: "reject" })).toMatchObject({
    ok: false,
    error: {
      name: "KeelApiError",
      code: "session_busy",
      status: 409,
      message: expect.stringContaining("the session is running"),
      details: { runId: expect.any(String) },
    },
  });
  await expect(value(call("sessions:decide", { connection: conn.id, sessionId: id, callId: asked.payload.callId, approve: true }))).resolves.toMatchObject({
    runId: expect.any(String),
    seq: expect.stringMatching(/^\d+$/),
  });
  await waitFor(() => followed(id).find((e) => e.type === "tool_result" && String(e.payload.content).includes("42")), {
    what: "tool result 42",
    timeoutMs: 30_000,
  });
  await waitFor(() => followed(id).filter((e) => e.type === "assistant_message").length >= 2, { what: "final answer", timeoutMs: 30_000 });
  expect(states(followId)).toContain("live");
  expect(emitted.some((e) => e.event === "sessions:delta" && e.payload.sessionId === id)).toBe(true);

  // Deciding twice is refused with the server's own code and message.
  expect(await call("sessions:decide", { connection: conn.id, sessionId: id, callId: asked.payload.callId, approve: false })).toMatchObject({
    ok: false,
    error: { code: "already_decided", status: 409, message: expect.stringContaining("already approved") },
  });
  const history = await value(call("sessions:history", { connection: conn.id, sessionId: id }));
  expect(history.session).toMatchObject({ id, title: "approval", agentName: "calc-bot" });
  const live = followed(id);
  expect(gapless(seqs(history.events))).toBe(true);
  expect(seqs(live)).toEqual(seqs(history.events));
  expect(live.map((e) => e.type)).toEqual(history.events.map((e: KeelEvent) => e.type));
  expect(await value(call("sessions:unfollow", { followId }))).toEqual({ stopped: true });
  expect(states(followId).at(-1)).toBe("closed");
  expect(await value(call("sessions:unfollow", { followId }))).toEqual({ stopped: false });
});

test("a follow resumes after the web process restarts: no gap, no duplicate", async () => {
  const id = await keel.newSession("restart");
  await keel.post(id, "hello");
  await waitFor(
    async () => (await value(call("sessions:history", { connection: conn.id, sessionId: id }))).events.some((e: KeelEvent) => e.type === "assistant_message"),
    { what: "first answer" },
  );
  const before = await value(call("sessions:history", { connection: conn.id, sessionId: id }));
  const after = before.events.at(-1)!.seq;
  const { followId } = await value(call("sessions:follow", { connection: conn.id, sessionId: id, after }));
  await waitFor(() => states(followId).includes("live"), { what: "follow live" });

  await keel.restartWeb();
  await waitFor(() => states(followId).includes("reconnecting"), { what: "follow reconnecting" });
  await keel.post(id, "calculate 2+3");
  const asked = await waitFor(() => followed(id).find((e) => e.type === "approval_requested"), { what: "approval after restart", timeoutMs: 30_000 });
  expect(states(followId).at(-1)).toBe("live");
  await value(call("sessions:decide", { connection: conn.id, sessionId: id, callId: asked.payload.callId, approve: false, reason: "not now" }));
  await waitFor(() => followed(id).filter((e) => e.type === "assistant_message").length >= 2, { what: "answer after deny", timeoutMs: 30_000 });

  const all = await value(call("sessions:history", { connection: conn.id, sessionId: id }));
  expect(gapless(seqs(all.events))).toBe(true);
  expect(seqs(followed(id))).toEqual(seqs(all.events).filter((s) => s > Number(after)));
  expect(followed(id).find((e) => e.type === "approval_decided")?.payload).toMatchObject({ decision: "denied", reason: "not now" });
  await value(call("sessions:unfollow", { followId }));
});

test("following a session that does not exist stops with the server's answer instead of retrying", async () => {
  const ghost = "00000000-0000-4000-8000-000000000000";
  const { followId } = await value(call("sessions:follow", { connection: conn.id, sessionId: ghost }));
  const closed = await waitFor(
    () => emitted.find((e) => e.event === "sessions:follow:state" && e.payload.followId === followId && e.payload.state === "closed"),
    { what: "follow closed" },
  );
  expect(closed.payload.error).toMatch(/not found/i);
  expect(await call("sessions:history", { connection: conn.id, sessionId: ghost })).toMatchObject({ ok: false, error: { code: "not_found" } });
  expect(await call("sessions:history", { connection: conn.id, sessionId: "nope" })).toMatchObject({ ok: false, error: { code: "invalid_input" } });
});
