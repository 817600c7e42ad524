// Session events as JSON. The payload is spliced in as the exact text the log holds (the
// assistant item, reasoning included, byte for byte), never parsed and re-serialized: it was
// checked against the event contract (@keel/core/contract/events) when it was appended, and every
// reader parses it with that contract. Frame names that are not events: STREAM_CONTROL_FRAMES.
import type { SessionEvent } from "@keel/core";

export function eventJson(e: SessionEvent): string {
  return `{"seq":"${e.seq}","type":${JSON.stringify(e.type)},"runId":${JSON.stringify(e.runId)},"createdAt":${JSON.stringify(e.createdAt)},"payload":${e.payloadText}}`;
}

export function eventsResponse(events: SessionEvent[], headers: Record<string, string> = {}): Response {
  const last = events.at(-1);
  const body = `{"events":[${events.map(eventJson).join(",")}],"lastSeq":${last ? `"${last.seq}"` : "null"}}`;
  return new Response(body, { headers: { "content-type": "application/json; charset=utf-8", ...headers } });
}

/** One SSE frame: id = seq, event = type, data = the payload text (JSON has no raw newlines). */
export function sseFrame(e: SessionEvent): string {
  return `id: ${e.seq}\nevent: ${e.type}\ndata: ${e.payloadText.replace(/\r?\n/g, "\ndata: ")}\n\n`;
}
