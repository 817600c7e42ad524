// buildContext is pure: the same log always gives the same context. These cases are the repairs.
import { expect, test } from "vitest";
import { buildContext, MISSING_RESULT_NOTE } from "../src/agent/context.js";
import type { SessionEvent } from "../src/engine/types.js";

let seq = 0n;
const ev = (type: string, payload: unknown, runId = "run-1"): SessionEvent => ({
  sessionId: "s",
  seq: ++seq,
  type,
  payloadText: JSON.stringify(payload),
  runId,
  createdAt: new Date(0),
});
const user = (content: string) => ev("user_message", { role: "user", content });
const asst = (content: string | null, calls: string[] = []) =>
  ev("assistant_message", {
    message: {
      role: "assistant",
      content,
      ...(calls.length ? { tool_calls: calls.map((id) => ({ id, type: "function", function: { name: "t", arguments: "{}" } })) } : {}),
    },
    model: "m",
    finishReason: null,
    usage: null,
  });
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

test("payloads are read through the contract: a user message or tool result that breaks it is left out and reported", () => {
  const badUser = ev("user_message", { role: "user", content: 42 });
  const notJson: SessionEvent = { ...ev("user_message", {}), payloadText: "{not json" };
  const badResult = ev("tool_result", { tool_call_id: "a", content: "no state" });
  const c = buildContext([user("hi"), badUser, notJson, asst(null, ["a"]), badResult, result("a"), asst("done")], "");
  expect(c.messages.map((m) => m.role)).toEqual(["user", "assistant", "tool", "assistant"]);
  expect(c.repairs.map((r) => [r.kind, r.seq])).toEqual([
    ["malformed_user_message", badUser.seq.toString()],
    ["malformed_user_message", notJson.seq.toString()],
    ["orphan_tool_result", badResult.seq.toString()],
  ]);
  // An assistant item the contract refuses (a tool call without its type) is malformed.
  const noType = ev("assistant_message", {
    message: { role: "assistant", content: null, tool_calls: [{ id: "x", function: { name: "t", arguments: "{}" } }] },
    model: "m",
    finishReason: null,
    usage: null,
  });
  expect(buildContext([user("hi"), noType], "").repairs.map((r) => r.kind)).toEqual(["malformed_assistant"]);
});

test("the assistant item goes to the model as stored: provider fields kept, in their stored order", () => {
  // zod's parse would put the schema's keys (role, content, tool_calls) first; a provider checks
  // reasoning items byte for byte, so the context carries the stored object itself.
  const message = {
    role: "assistant",
    reasoning_content: "think",
    content: null,
    thinking_blocks: [{ type: "thinking", signature: "s" }],
    tool_calls: [{ id: "a", type: "function", function: { name: "t", arguments: "{}" }, extra: 1 }],
  };
  const stored = ev("assistant_message", { message, model: "m", finishReason: null, usage: null });
  const c = buildContext([user("hi"), stored], "");
  expect(JSON.stringify(c.messages[1])).toBe(JSON.stringify(message));
  expect(c.pending.map((p) => p.call.id)).toEqual(["a"]);
});
