// The step `keel worker` runs until the agent loop lands (issue: the agent loop): it answers the
// newest user message with one assistant message that says plainly what it is. It goes through
// the same claim, fence and append path as the real loop, so the embedded default shows the
// engine working end to end.
import { eventPayload, type StepFn } from "./types.js";

export const placeholderReplyStep: StepFn = async (ctx) => {
  const events = await ctx.events();
  const lastUser = events.findLast((e) => e.type === "user_message");
  const content = lastUser ? eventPayload<{ content: unknown }>(lastUser).content : "";
  const text = typeof content === "string" ? content : JSON.stringify(content);
  await ctx.append({
    type: "assistant_message",
    payload: { role: "assistant", content: `Keel received: ${text.slice(0, 2000)}\n(This is the engine's placeholder reply; the agent loop and models are not wired in yet.)` },
  });
  return "done";
};
