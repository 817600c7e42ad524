"use client";
// The session log in the browser: every stored event once, in seq order, plus the live token
// deltas of the model call in progress. EventSource resumes with Last-Event-ID by itself after a
// dropped connection; when the browser gives up (an HTTP error while the web process restarts
// closes it for good) we open a new one with ?after=<last seq>, so nothing is missed or repeated.
import { useEffect, useState } from "react";
import { applyDelta, EMPTY_DRAFT, type Delta, type Draft } from "@keel/core/agent/draft";

export type LogEvent = { seq: string; type: string; payload: any };
export type Live = Draft;
export type Conn = "connecting" | "live" | "reconnecting";

export const EVENT_TYPES = ["user_message", "assistant_message", "tool_result", "approval_requested", "approval_decided", "model_error",
  "run_retrying", "run_failed", "run_cancelled", "run_interrupted", "context_repaired"] as const;

const NO_LIVE: Live = EMPTY_DRAFT;

export function useSessionLog(sessionId: string, reconnectMs = 1_500) {
  const [events, setEvents] = useState<LogEvent[]>([]);
  const [live, setLive] = useState<Live>(NO_LIVE);
  const [conn, setConn] = useState<Conn>("connecting");

  useEffect(() => {
    let lastSeq = 0n;
    let es: EventSource | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const onEvent = (m: MessageEvent) => {
      if (!/^\d+$/.test(m.lastEventId)) return;
      const seq = BigInt(m.lastEventId);
      if (seq <= lastSeq) return; // the server sends in seq order; anything not newer was shown already
      lastSeq = seq;
      if (m.type === "assistant_message") setLive(NO_LIVE);
      let payload: unknown;
      try {
        payload = JSON.parse(m.data);
      } catch {
        payload = { raw: m.data };
      }
      setEvents((evs) => [...evs, { seq: m.lastEventId, type: m.type, payload }]);
    };
    const onDelta = (m: MessageEvent) => {
      const d = (JSON.parse(m.data) as { delta?: Delta }).delta ?? {};
      setLive((l) => applyDelta(l, d));
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
