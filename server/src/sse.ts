// A session's log as Server-Sent Events: everything after the client's last seq from the table,
// then live through the EventFeed (NOTIFY says "look", rows are read from the table, so each
// seq goes out once and in order). Token deltas ride along as `event: delta` with no id: they
// are ephemeral, and a reconnecting client gets the stored assistant item instead. On shutdown
// (shutdown.ts) the stream ends with a retry hint so the client resumes on another replica.
// The caller's credentials are checked again at every heartbeat: a revoked key, a logout or a
// removed member ends the stream with `event: unauthorized` (an EventSource that reconnects then
// gets 401 and stops). A stream also ends after `maxAgeMs` with `event: reconnect` and a retry
// hint, so no stream lives on credentials checked once, long ago.
import { KeelError, type SessionEvent } from "@keel/core";
import type { DeltaFrame } from "@keel/core/contract/events";
import type { Context } from "./context";
import { sseFrame } from "./events";
import { goAwayFrame, isDraining, registerStream, retryHintMs } from "./shutdown";

export type StreamOptions = {
  /** Resolves while the caller may still read this stream; rejects with a KeelError when not. */
  recheck: () => Promise<unknown>;
  maxAgeMs: number;
};

export function sessionStream(ctx: Context, req: Request, sessionId: string, afterSeq: bigint, opts: StreamOptions): Response {
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
      const offDeltas = ctx.deltas.subscribe(sessionId, (m) =>
        send(`event: delta\ndata: ${JSON.stringify({ runId: m.runId, delta: m.delta } satisfies DeltaFrame)}\n\n`),
      );
      const offEvents = ctx.feed.subscribe(sessionId, afterSeq, (events: SessionEvent[]) => send(events.map(sseFrame).join("")));
      let checking = false;
      const heartbeat = setInterval(() => {
        send(": heartbeat\n\n");
        if (checking || closed) return;
        checking = true;
        opts.recheck().then(
          () => (checking = false),
          (err: unknown) => {
            checking = false;
            // A database hiccup is not a revocation: keep the stream and check at the next beat.
            if (!(err instanceof KeelError) || ![401, 403, 404].includes(err.status)) {
              ctx.logger.warn({ sessionId, err }, "stream credentials re-check failed");
              return;
            }
            send(`event: unauthorized\ndata: ${JSON.stringify({ error: { code: err.code, message: err.message, details: {} } })}\n\n`);
            cleanup();
          },
        );
      }, ctx.env.KEEL_SSE_HEARTBEAT_MS);
      const maxAge = setTimeout(() => {
        const retryMs = retryHintMs();
        send(
          `retry: ${retryMs}\nevent: reconnect\ndata: ${JSON.stringify({ reason: "streams are renewed periodically; reconnect with Last-Event-ID", retryMs })}\n\n`,
        );
        cleanup();
      }, opts.maxAgeMs);
      cleanup = () => {
        if (closed) return;
        closed = true;
        clearInterval(heartbeat);
        clearTimeout(maxAge);
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
