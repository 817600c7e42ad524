// A session's log as Server-Sent Events: everything after the client's last seq from the table,
// then live through the EventFeed (NOTIFY says "look", rows are read from the table, so each
// seq goes out once and in order). Token deltas ride along as `event: delta` with no id: they
// are ephemeral, and a reconnecting client gets the stored assistant item instead. On shutdown
// (shutdown.ts) the stream ends with a retry hint so the client resumes on another replica.
import type { SessionEvent } from "@keel/core";
import type { Context } from "./context";
import { sseFrame } from "./events";
import { goAwayFrame, isDraining, registerStream, retryHintMs } from "./shutdown";

export function sessionStream(ctx: Context, req: Request, sessionId: string, afterSeq: bigint): Response {
  const enc = new TextEncoder();
  let cleanup = () => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false;
      const send = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(enc.encode(text));
        } catch {
          cleanup();
        }
      };
      if (isDraining()) {
        // Opened while this process drains (a load balancer that has not noticed yet): go away now.
        send(goAwayFrame(retryHintMs()));
        closed = true;
        controller.close();
        return;
      }
      send(`retry: 2000\n: stream of session ${sessionId} after seq ${afterSeq}\n\n`);
      const unregister = registerStream((retryMs) => {
        send(goAwayFrame(retryMs));
        cleanup();
      });
      const offDeltas = ctx.onDeltas(sessionId, (m) => send(`event: delta\ndata: ${JSON.stringify({ runId: m.runId, delta: m.delta })}\n\n`));
      const offEvents = ctx.feed.subscribe(sessionId, afterSeq, (events: SessionEvent[]) => send(events.map(sseFrame).join("")));
      const heartbeat = setInterval(() => send(": heartbeat\n\n"), ctx.env.KEEL_SSE_HEARTBEAT_MS);
      cleanup = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        unregister();
        offDeltas();
        offEvents();
        try {
          controller.close();
        } catch {
          /* already closed by the client */
        }
      };
      req.signal.addEventListener("abort", () => cleanup(), { once: true });
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(stream, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      // no-transform: keeps compression middleware (Next's included) from buffering the stream.
      "cache-control": "no-cache, no-transform",
      "x-accel-buffering": "no",
    },
  });
}
