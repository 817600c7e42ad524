// What a run came to, for a caller that posted a message and waits for the answer in the same
// request (the OpenAI-compatible endpoint): wait until the run ends or parks for an approval,
// then read its events and sum them up. The log is the truth: the answer is read from the stored
// events (parsed with the contract), never from the live deltas.
import { RunWaitTimeoutError } from "../errors.js";
import { parseEventText } from "../contract/events.js";
import type { EngineClient } from "./client.js";
import type { EventFeed } from "./feed.js";
import { TERMINAL_RUN_STATUSES, type RunStatus, type SessionEvent } from "./types.js";

/** A run that is over as far as a waiting caller is concerned: ended, or parked until a human decides. */
export type SettledRunStatus = "succeeded" | "failed" | "cancelled" | "interrupted" | "waiting_approval";

export type RunOutcome = {
  status: SettledRunStatus;
  /** The run's last assistant message (the answer). */
  content: string;
  /** Every assistant message of the run, concatenated (what a live stream of it has shown). */
  allContent: string;
  usage: { promptTokens: number; completionTokens: number };
  /** The reason of a failed run (run_failed) or of the last model error, if any. */
  error: string | null;
};

export type RunOutcomesOptions = {
  engine: EngineClient;
  feed: EventFeed;
  /** How long wait() waits for a run to settle before RunWaitTimeoutError. */
  timeoutMs: number;
  /** The re-check when no event arrives (a run can end without appending one, e.g. succeeded). */
  pollMs?: number;
};

const PAGE = 1000;

export class RunOutcomes {
  constructor(private readonly o: RunOutcomesOptions) {}

  /**
   * Waits until the run ends or parks for an approval, then returns its outcome from the events
   * after `afterSeq`. Throws RunWaitTimeoutError when `timeoutMs` passes or `signal` aborts.
   */
  async wait(q: { teamId: string; sessionId: string; runId: string; afterSeq: bigint; signal?: AbortSignal }): Promise<RunOutcome> {
    const timeout = AbortSignal.timeout(this.o.timeoutMs);
    const deadline = q.signal ? AbortSignal.any([q.signal, timeout]) : timeout;
    let wake = () => {};
    const off = this.o.feed.subscribe(q.sessionId, q.afterSeq, () => wake());
    try {
      for (;;) {
        const run = await this.o.engine.getRun({ teamId: q.teamId, runId: q.runId });
        if (isSettled(run.status)) return summarizeRun(run.status, await this.read(q));
        if (deadline.aborted) throw new RunWaitTimeoutError(q.sessionId, q.runId);
        // The feed wakes us on each new event; the timer covers a run that ends without one.
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.o.pollMs ?? 250);
          const done = () => (clearTimeout(t), deadline.removeEventListener("abort", done), resolve());
          wake = done;
          deadline.addEventListener("abort", done, { once: true });
        });
      }
    } finally {
      off();
    }
  }

  /** The run's events after `afterSeq` (a run's events all follow the message that started it). */
  private async read(q: { teamId: string; sessionId: string; runId: string; afterSeq: bigint }): Promise<SessionEvent[]> {
    const out: SessionEvent[] = [];
    for (let after = q.afterSeq; ;) {
      const page = await this.o.engine.readEvents({ teamId: q.teamId, sessionId: q.sessionId, afterSeq: after, limit: PAGE });
      out.push(...page.filter((e) => e.runId === q.runId));
      if (page.length < PAGE) return out;
      after = page.at(-1)!.seq;
    }
  }
}

function isSettled(s: RunStatus): s is SettledRunStatus {
  return TERMINAL_RUN_STATUSES.includes(s) || s === "waiting_approval";
}

/** A run's outcome from its events: its assistant messages, the tokens they used, its error. Pure. */
export function summarizeRun(status: SettledRunStatus, events: readonly SessionEvent[]): RunOutcome {
  const usage = { promptTokens: 0, completionTokens: 0 };
  let content = "";
  let allContent = "";
  let error: string | null = null;
  for (const raw of events) {
    const e = parseEventText(raw.type, raw.payloadText);
    if (!e.known) continue; // a newer writer's event: not part of the answer
    if (e.type === "assistant_message") {
      content = e.payload.message.content ?? "";
      allContent += content;
      usage.promptTokens += e.payload.usage?.promptTokens ?? 0;
      usage.completionTokens += e.payload.usage?.completionTokens ?? 0;
    } else if (e.type === "run_failed" || e.type === "model_error") {
      error = e.payload.message;
    }
  }
  return { status, content, allContent, usage, error };
}
