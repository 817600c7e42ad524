// Live reads of session logs: subscribe(session, afterSeq) delivers every later event once, in
// seq order. NOTIFY (from the session_events trigger) says "look now"; the events themselves are
// always read from the table, so a notification lost while the listener reconnects costs latency
// (the fallback poll finds it), never an event.
import type { Logger } from "../logger.js";
import { PgListener } from "../db/listener.js";
import type { Pool } from "../db/pool.js";
import { readEvents } from "./events.js";
import type { SessionEvent } from "./types.js";

type Sub = { lastSeq: bigint; deliver: (events: SessionEvent[]) => void; closed: boolean };
/** The subscribers of one session share its reads: one query per notification, not one each. */
type Group = { sessionId: string; subs: Set<Sub>; pumping: boolean; again: boolean; retry: NodeJS.Timeout | null };

const PAGE = 500;

export class EventFeed {
  private readonly listener: PgListener;
  private readonly groups = new Map<string, Group>();
  private poll: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: { pool: Pool; connectionString: string; logger: Logger; pollMs?: number }) {
    this.listener = new PgListener({
      connectionString: o.connectionString,
      channels: ["keel_events"],
      applicationName: "keel-feed",
      logger: o.logger,
      onNotification: (_ch, payload) => {
        const g = this.groups.get(payload.slice(0, payload.indexOf(":")));
        if (g) void this.pump(g);
      },
      // Reconnected: anything may have been missed; look at every subscription.
      onConnect: async () => void setImmediate(() => this.pumpAll()),
    });
  }

  async start(): Promise<void> {
    await this.listener.start();
    this.poll = setInterval(() => void this.pollBehind(), this.o.pollMs ?? 2_000);
    this.poll.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    for (const g of this.groups.values()) {
      if (g.retry) clearTimeout(g.retry);
      for (const s of g.subs) s.closed = true;
    }
    this.groups.clear();
    await this.listener.stop();
  }

  /** Delivers events with seq > afterSeq, now and as they are appended. Returns unsubscribe. */
  subscribe(sessionId: string, afterSeq: bigint, deliver: (events: SessionEvent[]) => void): () => void {
    const sub: Sub = { lastSeq: afterSeq, deliver, closed: false };
    let g = this.groups.get(sessionId);
    if (!g) this.groups.set(sessionId, (g = { sessionId, subs: new Set(), pumping: false, again: false, retry: null }));
    g.subs.add(sub);
    void this.pump(g);
    const group = g;
    return () => {
      sub.closed = true;
      group.subs.delete(sub);
      if (group.subs.size === 0 && this.groups.get(sessionId) === group) {
        if (group.retry) clearTimeout(group.retry);
        this.groups.delete(sessionId);
      }
    };
  }

  private pumpAll(): void {
    for (const g of this.groups.values()) void this.pump(g);
  }

  /**
   * The fallback for a lost notification, in one query for all sessions: pump only those whose
   * newest seq is past what a subscriber has. (It was one read per subscriber every tick: with
   * 1000 open streams that kept the web pool's 10 connections busy, queued reads waited past the
   * pool's 5 s timeout and deliveries were lost until a later tick; measured in bench:web.)
   */
  private async pollBehind(): Promise<void> {
    if (this.groups.size === 0) return;
    try {
      const { rows } = await this.o.pool.query<{ id: string; last_seq: string }>(
        "SELECT id, last_seq::text AS last_seq FROM sessions WHERE id = ANY($1::uuid[])",
        [[...this.groups.keys()]],
      );
      for (const r of rows) {
        const g = this.groups.get(r.id);
        const newest = BigInt(r.last_seq);
        if (g && [...g.subs].some((s) => s.lastSeq < newest)) void this.pump(g);
      }
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, "event feed poll failed");
    }
  }

  /**
   * One reader per session at a time: it reads from the lowest seq any subscriber still needs and
   * hands each subscriber only the events past its own seq, so deliveries never overlap, repeat
   * or skip. A failed read is retried shortly (not left to the next poll).
   */
  private async pump(g: Group): Promise<void> {
    if (g.pumping) {
      g.again = true;
      return;
    }
    g.pumping = true;
    try {
      do {
        g.again = false;
        for (;;) {
          const subs = [...g.subs].filter((s) => !s.closed);
          if (subs.length === 0 || this.stopped) return;
          const from = subs.reduce((m, s) => (s.lastSeq < m ? s.lastSeq : m), subs[0]!.lastSeq);
          const events = await readEvents(this.o.pool, g.sessionId, from, PAGE);
          for (const s of subs) {
            if (s.closed) continue;
            const mine = events.filter((e) => e.seq > s.lastSeq);
            if (mine.length === 0) continue;
            s.lastSeq = mine.at(-1)!.seq;
            try {
              s.deliver(mine);
            } catch (err) {
              this.o.logger.warn({ err: (err as Error).message, sessionId: g.sessionId }, "event feed subscriber failed");
            }
          }
          if (events.length < PAGE) break;
        }
      } while (g.again);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, sessionId: g.sessionId }, "event feed read failed");
      if (!g.retry && !this.stopped) {
        g.retry = setTimeout(
          () => {
            g.retry = null;
            void this.pump(g);
          },
          200 + Math.floor(Math.random() * 300),
        );
        g.retry.unref();
      }
    } finally {
      g.pumping = false;
    }
  }
}
