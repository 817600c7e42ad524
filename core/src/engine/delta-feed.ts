// Live token deltas of a session, beside EventFeed (feed.ts, the stored log). Ephemeral by design:
// the worker NOTIFYs each delta on `keel_stream` (agent/stream.ts) and nothing is read back from a
// table, so a delta sent while nobody listens, or while the LISTEN connection reconnects, is gone;
// the stored assistant item that follows replaces the draft anyway. One LISTEN connection per
// process fans out to every subscriber of the delta's session.
import type { Logger } from "../logger.js";
import { PgListener } from "../db/listener.js";
import { deltaNotificationSchema, type DeltaNotification } from "../contract/events.js";
import { STREAM_CHANNEL } from "../agent/stream.js";

export type DeltaSubscriber = (m: DeltaNotification) => void;

export class DeltaFeed {
  private readonly listener: PgListener;
  private readonly subs = new Map<string, Set<DeltaSubscriber>>();

  constructor(private readonly o: { connectionString: string; logger: Logger; applicationName?: string }) {
    this.listener = new PgListener({
      connectionString: o.connectionString,
      channels: [STREAM_CHANNEL],
      applicationName: o.applicationName ?? "keel-deltas",
      logger: o.logger,
      onNotification: (_ch, payload) => this.deliver(payload),
    });
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  async stop(): Promise<void> {
    this.subs.clear();
    await this.listener.stop();
  }

  /** Delivers each delta of the session notified from now on. Returns unsubscribe. */
  subscribe(sessionId: string, fn: DeltaSubscriber): () => void {
    let set = this.subs.get(sessionId);
    if (!set) this.subs.set(sessionId, (set = new Set()));
    set.add(fn);
    const mine = set;
    return () => {
      mine.delete(fn);
      if (mine.size === 0 && this.subs.get(sessionId) === mine) this.subs.delete(sessionId);
    };
  }

  private deliver(payload: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return;
    }
    // A notification that is not a delta (another writer, a newer shape) is dropped: the stored
    // item follows anyway, and one bad payload must not reach, or break, the subscribers.
    const m = deltaNotificationSchema.safeParse(parsed);
    if (!m.success) return;
    for (const fn of [...(this.subs.get(m.data.sessionId) ?? [])]) {
      try {
        fn(m.data);
      } catch (err) {
        this.o.logger.warn({ err: (err as Error).message, sessionId: m.data.sessionId }, "delta subscriber failed");
      }
    }
  }
}
