"use client";
// The session log in the browser: every stored event once, in seq order, plus the live token
// deltas of the model call in progress. EventSource resumes with Last-Event-ID by itself after a
// dropped connection; when the browser gives up (an HTTP error while the web process restarts
// closes it for good) we open a new one with ?after=<last seq>, so nothing is missed or repeated.
// EventSource delivers only the frame names it listens for (the contract's event types): a seq
// that jumps means events this version does not know (a newer worker wrote them); they are read
// from the events endpoint and shown as unknown, never silently dropped.
import { useEffect, useState } from "react";
import { EVENT_TYPES, parseDeltaFrame } from "@keel/core/contract/events";
import { applyDelta, EMPTY_DRAFT, type Draft, type LogEvent } from "@keel/core/view/session";
import { api, keel } from "./api";

export type { LogEvent };
export type Live = Draft;
export type Conn = "connecting" | "live" | "reconnecting";

const NO_LIVE: Live = EMPTY_DRAFT;

/** Adds events in seq order, each seq once. */
function merge(evs: LogEvent[], more: LogEvent[]): LogEvent[] {
  const last = evs.at(-1);
  if (more.length === 1 && (!last || BigInt(more[0]!.seq) > BigInt(last.seq))) return [...evs, more[0]!]; // the usual case: the next seq
  const seen = new Set(evs.map((e) => e.seq));
  const fresh = more.filter((e) => !seen.has(e.seq));
  if (fresh.length === 0) return evs;
  return [...evs, ...fresh].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
}

export function useSessionLog(sessionId: string, reconnectMs = 1_500) {
  const [events, setEvents] = useState<LogEvent[]>([]);
  const [live, setLive] = useState<Live>(NO_LIVE);
  const [conn, setConn] = useState<Conn>("connecting");

  useEffect(() => {
    let lastSeq = 0n;
    let es: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const fillGap = (after: bigint, before: bigint) => {
      const limit = Math.min(Number(before - after - 1n), 5000);
      keel.call(api.sessions.events, { params: { id: sessionId }, query: { after: String(after), limit: String(limit) } }).then(
        (r) =>
          !stopped &&
          setEvents((evs) =>
            merge(
              evs,
              (r.events as LogEvent[]).filter((e) => BigInt(e.seq) < before),
            ),
          ),
        () => {}, // the next gap or a reload reads them again
      );
    };
    const onEvent = (m: MessageEvent) => {
      if (!/^\d+$/.test(m.lastEventId)) return;
      const seq = BigInt(m.lastEventId);
      if (seq <= lastSeq) return; // the server sends in seq order; anything not newer was shown already
      if (seq > lastSeq + 1n) fillGap(lastSeq, seq);
      lastSeq = seq;
      if (m.type === "assistant_message") setLive(NO_LIVE);
      let payload: unknown;
      try {
        payload = JSON.parse(m.data);
      } catch {
        payload = m.data; // shown as an invalid event by the view
      }
      setEvents((evs) => merge(evs, [{ seq: m.lastEventId, type: m.type, payload }]));
    };
    const onDelta = (m: MessageEvent) => {
      const d = parseDeltaFrame(String(m.data));
      if (d) setLive((l) => applyDelta(l, d.delta));
    };
    const open = () => {
      if (stopped) return;
      es = new EventSource(`/api/v1/sessions/${sessionId}/stream${lastSeq > 0n ? `?after=${lastSeq}` : ""}`);
      es.onopen = () => setConn("live");
      es.onerror = () => {
        setConn("reconnecting");
        setLive(NO_LIVE); // deltas missed meanwhile are not replayed; the stored message follows
        if (es?.readyState === EventSource.CLOSED) {
          es.close();
          timer = setTimeout(open, reconnectMs);
        }
      };
      es.addEventListener("delta", onDelta);
      for (const t of EVENT_TYPES) es.addEventListener(t, onEvent);
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(timer);
      es?.close();
    };
  }, [sessionId, reconnectMs]);

  return { events, live, conn };
}
