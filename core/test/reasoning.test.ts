// reasoningText renders what each provider style sends; encrypted and redacted parts are named, not dropped.
import { expect, test } from "vitest";
import { reasoningText } from "../src/view/reasoning.js";

test("each provider's reasoning fields, in order of preference", () => {
  expect(reasoningText({ reasoning_content: "deepseek thoughts", thinking_blocks: [{ type: "thinking", thinking: "x" }] })).toBe("deepseek thoughts");
  expect(reasoningText({ reasoning: "openrouter summary" })).toBe("openrouter summary");
  expect(
    reasoningText({
      thinking_blocks: [
        { type: "thinking", thinking: "a" },
        { type: "redacted_thinking", data: "zz" },
        { type: "thinking", thinking: "b" },
      ],
    }),
  ).toBe("a\n[redacted]\nb");
  expect(
    reasoningText({
      reasoning_details: [
        { type: "reasoning.text", text: "Weigh " },
        { type: "reasoning.text", text: "it." },
        { type: "reasoning.encrypted", data: "gAAA" },
      ],
    }),
  ).toBe("Weigh it.[encrypted]");
  expect(reasoningText({ reasoning_details: [{ type: "reasoning.summary", summary: "short" }] })).toBe("short");
});

test("no reasoning, or fields of an unexpected shape, give an empty string rather than a throw", () => {
  expect(reasoningText({})).toBe("");
  expect(reasoningText({ reasoning_content: 42, thinking_blocks: "nope", reasoning_details: [null, 3] })).toBe("");
});
