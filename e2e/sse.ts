// A session's SSE stream read the way a browser's EventSource reads it, but keeping a record:
// every event id received (duplicates included, so they can be counted), when each first
// arrived, and how long the client was without an open stream. Whenever a stream ends (the web
// pod draining sends `event: shutdown` with a retry hint; a pod that is gone resets the
// connection), it reconnects with `Last-Event-ID: <last seq received>` (server/src/sse.ts).
import { sseFrames } from "@keel/desktop/sessions";
import { BASE_URL } from "./kind.ts";

export class ResumingStream {
  /** Every event seq received, in order of arrival, duplicates kept. */
  readonly seqs: bigint[] = [];
  /** Event seq → the time (ms since epoch) it first arrived. */
  readonly arrivals = new Map<string, number>();
  /** Streams ended by the server (`shutdown` / `reconnect` frames) or by a failed connection. */
  reconnects = 0;
  /** Of those, how many the server announced (`event: shutdown` or `event: reconnect`). */
  goAways = 0;
  /** The longest time without an open stream: from a stream's end to the next one's first byte, retry wait included. */
  longestPauseMs = 0;
  /** The longest gap between two received chunks (events, heartbeats every 15 s, go-away frames), reconnects included. */
  longestGapMs = 0;
  private lastBytesAt: number | null = null;
  readonly errors: string[] = [];
  readonly startedAt = Date.now();
  private lastSeq = 0n;
  private readonly abort = new AbortController();
  readonly done: Promise<void>;

  constructor(
    private readonly sessionId: string,
    private readonly headers: Record<string, string>,
  ) {
    this.done = this.loop();
  }

  /** The highest seq received so far. */
  get last(): bigint {
    return this.lastSeq;
  }

  async stop(): Promise<void> {
    this.abort.abort(new Error("stopped"));
    await this.done;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let downSince: number | null = null;
    let retryMs = 1000;
    while (!signal.aborted) {
      try {
        const res = await fetch(`${BASE_URL}/api/v1/sessions/${this.sessionId}/stream`, {
          headers: { ...this.headers, ...(this.lastSeq > 0n ? { "last-event-id": String(this.lastSeq) } : {}) },
          signal,
        });
        if (res.status !== 200 || !res.body) throw new Error(`stream answered ${res.status}: ${await res.text()}`);
        const onBytes = () => {
          const now = Date.now();
          if (this.lastBytesAt !== null) this.longestGapMs = Math.max(this.longestGapMs, now - this.lastBytesAt);
          this.lastBytesAt = now;
          if (downSince === null) return;
          this.longestPauseMs = Math.max(this.longestPauseMs, Date.now() - downSince);
          downSince = null;
        };
        retryMs = 1000;
        for await (const f of sseFrames(res.body, onBytes)) {
          if (f.event === "shutdown" || f.event === "reconnect") {
            this.goAways++;
            retryMs = Number((JSON.parse(f.data) as { retryMs?: number }).retryMs ?? 1000);
          } else if (f.id !== null && /^\d+$/.test(f.id)) {
            const seq = BigInt(f.id);
            this.seqs.push(seq);
            if (!this.arrivals.has(f.id)) this.arrivals.set(f.id, Date.now());
            if (seq > this.lastSeq) this.lastSeq = seq;
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        this.errors.push((err as Error).message);
      }
      if (signal.aborted) break;
      downSince ??= Date.now();
      this.reconnects++;
      await new Promise<void>((r) => {
        const t = setTimeout(r, retryMs);
        signal.addEventListener("abort", () => (clearTimeout(t), r()), { once: true });
      });
    }
  }
}

/** Received vs the log: seqs the client never got, and how many it got more than once. */
export function compareWithLog(stream: ResumingStream, logSeqs: bigint[]): { lost: bigint[]; duplicates: number } {
  const got = new Set(stream.seqs.map(String));
  return { lost: logSeqs.filter((s) => !got.has(String(s))), duplicates: stream.seqs.length - got.size };
}
