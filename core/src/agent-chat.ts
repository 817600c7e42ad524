// Posting to an agent addressed by name, the way the OpenAI-compatible endpoint does it: the model
// name picks the team's agent, a given session must be that agent's, and a call without one gets a
// new session titled by the message. Two steps on purpose: `open` binds the session (every refusal
// happens here, before a session exists), then `post` appends the message and queues the run. A
// streaming caller subscribes to the session's deltas between the two so it misses none, and the
// endpoint marks an answer "do not retry" from the moment a session may exist.
import { NotFoundError, ValidationError } from "./errors.js";
import type { Pool } from "./db/pool.js";
import type { Principal } from "./access/principal.js";
import { listAgents } from "./catalog.js";
import type { Tenancy } from "./tenancy.js";
import { checkIdempotencyKey, type EngineClient, type PostMessageInput, type PostMessageResult } from "./engine/client.js";

export type AgentChatMessage = {
  /** The agent's name. */
  agent: string;
  /** The session to continue; null starts a new one. */
  sessionId: string | null;
  content: PostMessageInput["content"];
  idempotencyKey?: string;
  /** The posting request's trace context (PostMessageInput.traceparent). */
  traceparent?: string;
};

/** A session bound to the agent, the message not posted yet. */
export type OpenAgentChat = { sessionId: string; agentId: string; post(): Promise<PostMessageResult> };

const TITLE_CHARS = 80;

export class AgentChat {
  constructor(private readonly o: { pool: Pool; tenancy: Tenancy; engine: EngineClient }) {}

  /** Finds the agent, checks the message and binds the session; posts nothing. */
  async open(p: Principal, m: AgentChatMessage): Promise<OpenAgentChat> {
    // Checked here as well as in postMessage: a refused message must not leave a new, empty session behind.
    checkIdempotencyKey(m.idempotencyKey);
    const agent = (await listAgents(this.o.pool, p.teamId)).find((a) => a.name === m.agent);
    if (!agent) throw new NotFoundError("Model", m.agent);
    // A new session through the same service as POST /api/v1/sessions: role checked, session.create audited.
    const sessionId = m.sessionId
      ? await this.sessionOf(p, agent.id, m.sessionId)
      : (await this.o.tenancy.createSession(p, { agentId: agent.id, title: title(m.content) })).id;
    return {
      sessionId,
      agentId: agent.id,
      post: () =>
        this.o.engine.postMessage({
          teamId: p.teamId,
          sessionId,
          content: m.content,
          onBusy: "enqueue",
          idempotencyKey: m.idempotencyKey,
          traceparent: m.traceparent,
        }),
    };
  }

  private async sessionOf(p: Principal, agentId: string, sessionId: string): Promise<string> {
    const s = await this.o.tenancy.getSession(p.teamId, sessionId);
    if (s.agentId !== agentId) throw new ValidationError("this session belongs to another agent (model)", { sessionId });
    return s.id;
  }
}

function title(content: PostMessageInput["content"]): string {
  const text = typeof content === "string" ? content : (content[0]?.text ?? "");
  return text.slice(0, TITLE_CHARS);
}
