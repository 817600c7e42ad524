// Graceful shutdown of the web process, as far as streams and readiness are concerned. The state
// lives on globalThis under a registered symbol because two copies of this module exist in one
// process: the one webpack bundles into the routes, and the one `keel web` (cli/src/web.ts)
// imports to start the drain on SIGTERM. No imports: both sides load it as is.
//
// On drain: /readyz answers 503 at once (load balancers stop sending new requests here), every
// open SSE stream gets a `retry:` hint and a final `event: shutdown` and is closed, and a stream
// opened while draining gets the same answer straight away. EventSource clients then reconnect
// (through the load balancer, to another replica) with Last-Event-ID and miss nothing.

/** Ends one stream: writes the retry hint and the going-away event, then closes it. */
export type GoAway = (retryMs: number) => void;

type DrainState = { draining: boolean; since: number | null; streams: Set<GoAway> };

const KEY = Symbol.for("keel.web.drain");

function state(): DrainState {
  const g = globalThis as unknown as Record<symbol, DrainState | undefined>;
  return (g[KEY] ??= { draining: false, since: null, streams: new Set() });
}

export function isDraining(): boolean {
  return state().draining;
}

/** Registers an open stream; returns the unregister function (call it when the stream ends). */
export function registerStream(goAway: GoAway): () => void {
  const s = state();
  s.streams.add(goAway);
  return () => s.streams.delete(goAway);
}

/**
 * A reconnect delay for one stream: base plus up to base again of jitter, so a thousand streams
 * ended at once do not reconnect to the next replica in the same millisecond.
 */
export function retryHintMs(baseMs = 1000): number {
  return baseMs + Math.floor(Math.random() * baseMs);
}

/** Starts draining (idempotent) and ends every open stream. Returns how many were ended. */
export function beginDrain(opts: { retryBaseMs?: number } = {}): { streamsEnded: number } {
  const s = state();
  if (!s.draining) {
    s.draining = true;
    s.since = Date.now();
  }
  const open = [...s.streams];
  s.streams.clear();
  for (const goAway of open) goAway(retryHintMs(opts.retryBaseMs));
  return { streamsEnded: open.length };
}

/** The SSE text that ends a stream: the retry field first, then an event clients can act on. */
export function goAwayFrame(retryMs: number): string {
  return `retry: ${retryMs}\nevent: shutdown\ndata: ${JSON.stringify({ reason: "this web process is shutting down; reconnect with Last-Event-ID", retryMs })}\n\n`;
}
