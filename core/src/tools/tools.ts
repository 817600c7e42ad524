// The tool interface and the registry the loop looks tools up in. Arguments are validated
// against each tool's JSON schema (ajv) before it runs; a bad call becomes a tool error the
// model can read, never an exception in the worker.
import { Ajv, type ValidateFunction } from "ajv";

/** A tool as the model is told of it (OpenAI function-calling shape). */
export type ToolSpec = { type: "function"; function: { name: string; description: string; parameters: object } };

/** `epoch` is the run's fencing epoch: a sandbox refuses calls from a stale claim of the run. */
export type ToolContext = { signal: AbortSignal; idempotencyKey: string; teamId: string; sessionId: string; runId: string; epoch: bigint };

export interface Tool {
  name: string;
  description: string;
  /** JSON schema of the arguments object. */
  parameters: object;
  /** Safe to run again when a worker died mid-call without recording the result. */
  idempotent: boolean;
  /** Pause the run for a human decision before running (an agent may also require it). */
  requiresApproval: boolean;
  timeoutMs: number;
  run(args: unknown, ctx: ToolContext): Promise<unknown>;
}

/** An agent's tool entry: a tool name, optionally requiring approval on this agent. */
export type AgentToolConfig = string | { name: string; requiresApproval?: boolean };

export type ResolvedTool = { tool: Tool; requiresApproval: boolean; validate: ValidateFunction };

export class ToolRegistry {
  private readonly tools = new Map<string, Tool>();
  private readonly validators = new Map<string, ValidateFunction>();
  private readonly ajv = new Ajv({ allErrors: true, strict: false });

  constructor(tools: Tool[] = []) {
    for (const t of tools) this.register(t);
  }

  register(tool: Tool): void {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(tool.name)) throw new Error(`invalid tool name ${tool.name}`);
    this.tools.set(tool.name, tool);
    this.validators.set(tool.name, this.ajv.compile(tool.parameters));
  }

  names(): string[] {
    return [...this.tools.keys()];
  }

  /**
   * The tools an agent may use, in its order; names the registry does not know are skipped.
   * `extra` are tools found at run time (remote MCP servers): they are offered as they are, and
   * need approval when the agent's config lists them with requiresApproval.
   */
  forAgent(config: readonly AgentToolConfig[], extra: readonly Tool[] = []): Map<string, ResolvedTool> {
    const out = new Map<string, ResolvedTool>();
    for (const entry of config) {
      const name = typeof entry === "string" ? entry : entry.name;
      const tool = this.tools.get(name);
      if (!tool) continue;
      const agentApproval = typeof entry === "string" ? false : entry.requiresApproval === true;
      out.set(name, { tool, requiresApproval: tool.requiresApproval || agentApproval, validate: this.validators.get(name)! });
    }
    for (const tool of extra) {
      if (out.has(tool.name)) continue;
      const entry = config.find((e) => typeof e !== "string" && e.name === tool.name);
      let validate: ValidateFunction;
      try {
        validate = this.ajv.compile(tool.parameters);
      } catch {
        validate = this.ajv.compile({ type: "object" }); // a remote schema ajv cannot compile: accept any object
      }
      out.set(tool.name, { tool, requiresApproval: tool.requiresApproval || (typeof entry === "object" && entry.requiresApproval === true), validate });
    }
    return out;
  }
}

export function toolSpecs(tools: Map<string, ResolvedTool>): ToolSpec[] {
  return [...tools.values()].map(({ tool }) => ({
    type: "function",
    function: { name: tool.name, description: tool.description, parameters: tool.parameters },
  }));
}

/** Built-ins that need no sandbox. Sandbox tools (exec, files) come with the sandbox driver. */
export const builtinTools: Tool[] = [
  {
    name: "get_time",
    description: "Returns the current date and time in UTC (ISO 8601).",
    parameters: { type: "object", properties: {}, additionalProperties: false },
    idempotent: true,
    requiresApproval: false,
    timeoutMs: 1_000,
    run: async () => ({ utc: new Date().toISOString() }),
  },
  {
    name: "calculator",
    description: "Evaluates an arithmetic expression with + - * / and parentheses.",
    parameters: { type: "object", properties: { expression: { type: "string", maxLength: 500 } }, required: ["expression"], additionalProperties: false },
    idempotent: true,
    requiresApproval: false,
    timeoutMs: 1_000,
    run: async (args) => ({ result: evaluate((args as { expression: string }).expression) }),
  },
];

/**
 * A tiny recursive-descent evaluator for + - * / and parentheses. Hand-written on purpose: never
 * `eval` model output, and a general expression library would accept far more than arithmetic.
 */
export function evaluate(expression: string): number {
  const src = expression.replace(/\s+/g, "");
  let i = 0;
  const fail = (): never => {
    throw new Error(`cannot evaluate "${expression}": expected a number, + - * / or parentheses at position ${i + 1}`);
  };
  const num = (): number => {
    if (src[i] === "(") {
      i++;
      const v = sum();
      if (src[i++] !== ")") fail();
      return v;
    }
    if (src[i] === "-") return (i++, -num());
    const m = /^\d+(\.\d+)?/.exec(src.slice(i));
    if (!m) return fail();
    i += m[0].length;
    return Number(m[0]);
  };
  const product = (): number => {
    let v = num();
    while (src[i] === "*" || src[i] === "/") v = src[i++] === "*" ? v * num() : v / num();
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (src[i] === "+" || src[i] === "-") v = src[i++] === "+" ? v + product() : v - product();
    return v;
  };
  const v = sum();
  if (i !== src.length) fail();
  if (!Number.isFinite(v)) throw new Error(`"${expression}" has no finite value`);
  return v;
}
