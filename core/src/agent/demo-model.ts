// The demo provider: deterministic and offline, so the embedded default works with no API key.
// It streams through the same accumulator as a real provider (reasoning, content and tool calls
// arrive as chunks), calls a tool when asked for one it has, and says plainly that it is a demo.
import { MessageAccumulator, type ChatMessage, type ChunkLike, type DeltaSink, type ModelClient, type ModelRequest, type ModelResult } from "./model.js";

export const DEMO_MODEL = "demo";

export class DemoModel implements ModelClient {
  async complete(req: ModelRequest, onDelta: DeltaSink): Promise<ModelResult> {
    const acc = new MessageAccumulator();
    for (const chunk of this.chunks(req)) {
      if (req.signal.aborted) throw req.signal.reason;
      acc.add(chunk, onDelta);
      await new Promise((r) => setImmediate(r));
    }
    return { message: acc.message(), finishReason: acc.finishReason, usage: acc.usage, model: DEMO_MODEL };
  }

  private *chunks(req: ModelRequest): Generator<ChunkLike> {
    const last = req.messages.at(-1);
    const has = (name: string) => req.tools.some((t) => t.function.name === name);
    const text = last?.role === "user" ? contentText(last.content) : "";
    const reasoning = (s: string) => ({ choices: [{ index: 0, delta: { reasoning_content: s } }] });
    let answer: string;
    let call: { name: string; args: string } | null = null;
    if (last?.role === "tool") {
      answer = `The tool returned: ${last.content.slice(0, 500)}\n\n(I am Keel's demo model: deterministic, offline, no LLM configured.)`;
    } else if (/\b(time|date|clock)\b/i.test(text) && has("get_time")) {
      call = { name: "get_time", args: "{}" };
      answer = "";
    } else if (/(?:calculate|compute|what is)\s+([-+*/().\d\s]+\d[)\s]*)/i.test(text) && has("calculator")) {
      const expression = /(?:calculate|compute|what is)\s+([-+*/().\d\s]+\d[)\s]*)/i.exec(text)![1]!.trim();
      call = { name: "calculator", args: JSON.stringify({ expression }) };
      answer = "";
    } else if (/\bwrite\s+(?:"[^"]*"|'[^']*')\s+(?:to|into)\s+\S+/i.test(text) && has("write_file")) {
      // write "some text" to notes/a.txt
      const m = /\bwrite\s+(?:"([^"]*)"|'([^']*)')\s+(?:to|into)\s+(\S+)/i.exec(text)!;
      call = { name: "write_file", args: JSON.stringify({ path: m[3]!.replace(/[.,;]$/, ""), content: m[1] ?? m[2] ?? "" }) };
      answer = "";
    } else if (/\bread\s+(?:the\s+)?file\s+\S+/i.test(text) && has("read_file")) {
      call = { name: "read_file", args: JSON.stringify({ path: /\bread\s+(?:the\s+)?file\s+(\S+)/i.exec(text)![1]!.replace(/[.,;]$/, "") }) };
      answer = "";
    } else if (/\b(run|exec|execute)\b/i.test(text) && has("exec")) {
      const command = /\b(?:run|exec|execute)\s+(.+)$/i.exec(text)?.[1]?.replace(/^`|`$/g, "") ?? "echo hello";
      call = { name: "exec", args: JSON.stringify({ command }) };
      answer = "";
    } else {
      answer =
        `Hello! I am Keel's demo model: deterministic, offline, no LLM configured. You said: "${text.slice(0, 500)}". ` +
        `Ask me the time or to calculate 6*7 to see a tool call.`;
    }
    yield { model: DEMO_MODEL, choices: [{ index: 0, delta: { role: "assistant" } }] };
    yield reasoning("Demo reasoning: ");
    yield reasoning(call ? `the user asked for something the ${call.name} tool can do.` : "answer directly.");
    for (let i = 0; i < answer.length; i += 16) yield { choices: [{ index: 0, delta: { content: answer.slice(i, i + 16) } }] };
    if (call) {
      const half = Math.ceil(call.args.length / 2);
      yield {
        choices: [
          {
            index: 0,
            delta: {
              tool_calls: [
                { index: 0, id: `call_demo_${req.messages.length}`, type: "function", function: { name: call.name, arguments: call.args.slice(0, half) } },
              ],
            },
          },
        ],
      };
      yield { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: call.args.slice(half) } }] } }] };
    }
    yield { choices: [{ index: 0, delta: {}, finish_reason: call ? "tool_calls" : "stop" }] };
    yield { choices: [], usage: { prompt_tokens: approxTokens(req.messages), completion_tokens: Math.ceil(answer.length / 4) + 8 } };
  }
}

function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "object" && p && "text" in p ? String((p as { text: unknown }).text) : "")).join(" ");
  return JSON.stringify(content);
}

function approxTokens(messages: ChatMessage[]): number {
  return Math.ceil(JSON.stringify(messages).length / 4);
}
