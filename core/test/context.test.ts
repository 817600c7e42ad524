// buildContext is pure: the same log always gives the same context. These cases are the repairs.
import { expect, test } from "vitest";
import { buildContext, MISSING_RESULT_NOTE } from "../src/agent/context.js";
import type { SessionEvent } from "../src/engine/types.js";

let seq = 0n;
const ev = (type: string, payload: unknown, runId = "run-1"): SessionEvent => ({ sessionId: "s", seq: ++seq, type, payloadText: JSON.stringify(payload), runId, createdAt: new Date(0) });
const user = (content: string) => ev("user_message", { role: "user", content });
const asst = (content: string | null, calls: string[] = []) =>
  ev("assistant_message", { message: { role: "assistant", content, ...(calls.length ? { tool_calls: calls.map((id) => ({ id, type: "function", function: { name: "t", arguments: "{}" } })) } : {}) }, model: "m", finishReason: null, usage: null });
const result = (id: string) => ev("tool_result", { tool_call_id: id, name: "t", content: `r-${id}`, isError: false, state: "succeeded" });

test("a complete exchange: system, user, calls, results, answer → done", () => {
  const c = buildContext([user("hi"), asst(null, ["a", "b"]), result("a"), result("b"), asst("bye")], "be brief");
  expect(c.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "tool", "assistant"]);
  expect(c).toMatchObject({ next: "done", pending: [], repairs: [] });
});

test("calls without results are pending, in order; after all results the model is next", () => {
  const c = buildContext([user("hi"), asst(null, ["a", "b"]), result("a")], "");
  expect(c.next).toBe("tools");
  expect(c.pending.map((p) => [p.call.id, p.interruptedByUser])).toEqual([["b", false]]);
  expect(buildContext([user("hi"), asst(null, ["a"]), result("a")], "").next).toBe("model");
});

test("a user message that arrived while tools ran goes after the results; remaining calls are marked interrupted", () => {
  const c = buildContext([user("hi"), asst(null, ["a", "b"]), result("a"), user("stop!")], "");
  expect(c.pending.map((p) => [p.call.id, p.interruptedByUser])).toEqual([["b", true]]);
  const done = buildContext([user("hi"), asst(null, ["a", "b"]), result("a"), user("stop!"), result("b")], "");
  expect(done.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "tool", "user"]);
  expect(done.next).toBe("model");
});

test("orphan tool results and malformed assistant items are left out and reported, never silently", () => {
  const bad = ev("assistant_message", { message: { role: "assistant", content: 42 } });
  const c = buildContext([user("hi"), result("ghost"), bad, asst("ok")], "");
  expect(c.messages.map((m) => m.role)).toEqual(["user", "assistant"]);
  expect(c.repairs.map((r) => r.kind)).toEqual(["orphan_tool_result", "malformed_assistant"]);
  expect(c.next).toBe("done");
});

test("a duplicate result for an already answered call is an orphan", () => {
  const c = buildContext([user("hi"), asst(null, ["a"]), result("a"), result("a")], "");
  expect(c.repairs.map((r) => r.kind)).toEqual(["orphan_tool_result"]);
});

test("a call left without a result before a newer assistant message is answered by a note and reported", () => {
  const calling = asst(null, ["a", "b"]);
  const c = buildContext([user("hi"), calling, result("a"), user("meanwhile"), asst("moving on")], "");
  expect(c.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "tool", "user", "assistant"]);
  expect(c.messages[3]).toEqual({ role: "tool", tool_call_id: "b", content: MISSING_RESULT_NOTE });
  expect(c.repairs).toEqual([{ kind: "missing_tool_result", seq: calling.seq.toString(), detail: "call b (t) has no result" }]);
  expect(c.next).toBe("done");
});
