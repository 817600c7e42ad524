// One fixture log (every event type, every tool-call state, an event of a newer version, a payload
// that breaks the contract) rendered through the dashboard's and the desktop's event views: both
// must show the same tool-call states, the same events, and "unknown event <type>" rather than crash.
// react-dom/server renders both components as they are (the desktop's is also driven in Chromium
// by desktop/test/ui; the dashboard's by server/test/dashboard.test.ts).
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, test } from "vitest";
import { EVENT_TYPES } from "@keel/core/contract/events";
import { CALL_STATES, sessionView, type LogEvent } from "@keel/core/view/session";
import { EventView as DashboardEventView } from "@keel/server/event-view";
import { EventView as DesktopEventView } from "@keel/desktop/event-view";

const call = (id: string, name: string, args = "{}") => ({ id, type: "function", function: { name, arguments: args } });
const result = (id: string, state: string, content: string) => ({ tool_call_id: id, name: "calculator", content, isError: state !== "succeeded", state });
const assistant = (content: string | null, calls: object[], extra: object = {}) => ({
  message: { role: "assistant", content, ...(calls.length ? { tool_calls: calls } : {}), ...extra },
  model: "demo",
  finishReason: calls.length ? "tool_calls" : "stop",
  usage: { promptTokens: 3, completionTokens: 5 },
});
const runId = "00000000-0000-4000-8000-000000000001";

const log: LogEvent[] = [
  { type: "user_message", payload: { role: "user", content: "calculate things" } },
  {
    type: "assistant_message",
    payload: assistant(
      null,
      [call("a_done", "calculator", '{"expression":"6*7"}'), call("a_error", "calculator"), call("a_ind", "shell"), call("a_notrun", "shell")],
      { reasoning_content: "Four calls." },
    ),
  },
  { type: "tool_result", payload: result("a_done", "succeeded", "42") },
  { type: "tool_result", payload: result("a_error", "failed", "Error: invalid arguments") },
  { type: "tool_result", payload: result("a_ind", "indeterminate", "The call was interrupted") },
  { type: "run_interrupted", payload: { runId, reason: "a new message interrupted the run" } },
  { type: "user_message", payload: { role: "user", content: [{ type: "text", text: "again" }] } },
  { type: "context_repaired", payload: { repairs: [{ kind: "missing_tool_result", seq: "2", detail: "call a_notrun (shell) has no result" }] } },
  { type: "model_error", payload: { code: "model_unavailable", message: "the provider answered 503", retryable: true } },
  {
    type: "run_retrying",
    payload: {
      runId,
      code: "model_unavailable",
      message: "the provider answered 503",
      attempt: 1,
      maxAttempts: 3,
      delayMs: 500,
      nextAttemptAt: "2026-01-01T00:00:00.000Z",
    },
  },
  { type: "run_failed", payload: { runId, code: "model_unavailable", message: "gave up", attempts: 3 } },
  { type: "run_cancelled", payload: { runId } },
  {
    type: "assistant_message",
    payload: assistant("Asking first.", [call("b_denied", "shell"), call("b_approved", "shell"), call("b_pending", "shell"), call("b_running", "calculator")]),
  },
  { type: "approval_requested", payload: { callId: "b_denied", name: "shell", arguments: "{}" } },
  { type: "approval_decided", payload: { callId: "b_denied", decision: "denied", reason: "not now", decidedBy: "ada@example.com" } },
  { type: "tool_result", payload: result("b_denied", "failed", "Not run: a human denied this call: not now") },
  { type: "approval_requested", payload: { callId: "b_approved", name: "shell", arguments: "{}" } },
  { type: "approval_decided", payload: { callId: "b_approved", decision: "approved", reason: null, decidedBy: null } },
  { type: "approval_requested", payload: { callId: "b_pending", name: "shell", arguments: "{}" } },
  { type: "sandbox_snapshot", payload: { written: "by a newer worker" } },
  { type: "tool_result", payload: { tool_call_id: "b_running" } },
].map((e, i) => ({ seq: String(i + 1), ...e }));

const expected = {
  a_done: "done",
  a_error: "error",
  a_ind: "indeterminate",
  a_notrun: "not_run",
  b_denied: "denied",
  b_approved: "approved",
  b_pending: "pending_approval",
  b_running: "running",
};

const noop = async () => {};
function render(ui: "dashboard" | "desktop"): string {
  const view = sessionView(log);
  return view.events
    .map((e) =>
      renderToStaticMarkup(
        ui === "dashboard"
          ? createElement(DashboardEventView, { e, view, onDecide: noop })
          : createElement(DesktopEventView, { e, view, busy: false, onDecide: () => {} }),
      ),
    )
    .join("\n");
}
const callStates = (html: string) => Object.fromEntries([...html.matchAll(/data-call="([^"]+)"[^>]*data-state="([^"]+)"/g)].map((m) => [m[1], m[2]]));
const rendered = (html: string) => [...html.matchAll(/data-seq="(\d+)" data-type="([^"]+)"/g)].map((m) => `${m[1]}:${m[2]}`);

describe("both UIs render one fixture log the same way", () => {
  const dashboard = render("dashboard");
  const desktop = render("desktop");

  test("the fixture covers every event type and every call state", () => {
    expect(new Set(log.map((e) => e.type))).toEqual(new Set([...EVENT_TYPES, "sandbox_snapshot"]));
    expect(new Set(Object.values(expected))).toEqual(new Set(CALL_STATES));
  });

  test("the same tool-call states, each as expected", () => {
    expect(callStates(dashboard)).toEqual(expected);
    expect(callStates(desktop)).toEqual(callStates(dashboard));
  });

  test("every event is rendered once, in order, by both", () => {
    const seqs = log.map((e) => `${e.seq}:${e.type}`);
    expect(rendered(dashboard)).toEqual(seqs);
    expect(rendered(desktop)).toEqual(seqs);
  });

  test("an event of a newer version and a payload that breaks the contract are shown as such, not crashed on", () => {
    for (const html of [dashboard, desktop]) {
      expect(html).toContain("unknown event sandbox_snapshot");
      expect(html).toMatch(/invalid tool_result event \(name: /);
    }
  });

  test("reasoning, user text in parts and the approval decision read the same in both", () => {
    for (const html of [dashboard, desktop]) {
      expect(html).toContain("Four calls.");
      expect(html).toContain("again");
      expect(html).toContain("awaiting approval");
    }
  });
});
