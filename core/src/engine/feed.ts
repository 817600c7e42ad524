// Live reads of session logs: subscribe(session, afterSeq) delivers every later event once, in
// seq order. NOTIFY (from the session_events trigger) says "look now"; the events themselves are
// always read from the table, so a notification lost while the listener reconnects costs latency
// (the fallback poll finds it), never an event.
import type { Logger } from "../logger.js";
import { PgListener } from "../db/listener.js";
import type { Pool } from "../db/pool.js";
import { readEvents } from "./events.js";
import type { SessionEvent } from "./types.js";

type Sub = { sessionId: string; lastSeq: bigint; deliver: (events: SessionEvent[]) => void; pumping: boolean; again: boolean; closed: boolean };

export class EventFeed {
  private readonly listener: PgListener;
  private readonly subs = new Map<string, Set<Sub>>();
  private poll: NodeJS.Timeout | null = null;

  constructor(private readonly o: { pool: Pool; connectionString: string; logger: Logger; pollMs?: number }) {
    this.listener = new PgListener({
      connectionString: o.connectionString,
      channels: ["keel_events"],
      applicationName: "keel-feed",
      logger: o.logger,
      onNotification: (_ch, payload) => {
        const sessionId = payload.slice(0, payload.indexOf(":"));
        for (const s of this.subs.get(sessionId) ?? []) void this.pump(s);
      },
      // Reconnected: anything may have been missed; look at every subscription.
      onConnect: async () => void setImmediate(() => this.pumpAll()),
    });
  }

  async start(): Promise<void> {
    await this.listener.start();
    this.poll = setInterval(() => this.pumpAll(), this.o.pollMs ?? 2_000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    for (const set of this.subs.values()) for (const s of set) s.closed = true;
    this.subs.clear();
    await this.listener.stop();
  }

  /** Delivers events with seq > afterSeq, now and as they are appended. Returns unsubscribe. */
  subscribe(sessionId: string, afterSeq: bigint, deliver: (events: SessionEvent[]) => void): () => void {
    const sub: Sub = { sessionId, lastSeq: afterSeq, deliver, pumping: false, again: false, closed: false };
    let set = this.subs.get(sessionId);
    if (!set) this.subs.set(sessionId, (set = new Set()));
    set.add(sub);
    void this.pump(sub);
    return () => {
      sub.closed = true;
      set.delete(sub);
      if (set.size === 0) this.subs.delete(sessionId);
    };
  }

  private pumpAll(): void {
    for (const set of this.subs.values()) for (const s of set) void this.pump(s);
  }

  /** One reader per subscription at a time, so deliveries never overlap or repeat. */
  private async pump(s: Sub): Promise<void> {
    if (s.pumping) {
      s.again = true;
      return;
    }
    s.pumping = true;
    try {
      do {
        s.again = false;
        for (;;) {
          if (s.closed) return;
          const events = await readEvents(this.o.pool, s.sessionId, s.lastSeq, 500);
          if (events.length === 0 || s.closed) break;
          s.lastSeq = events.at(-1)!.seq;
          s.deliver(events);
          if (events.length < 500) break;
        }
      } while (s.again);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, sessionId: s.sessionId }, "event feed read failed");
    } finally {
      s.pumping = false;
    }
  }
}
