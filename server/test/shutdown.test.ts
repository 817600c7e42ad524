// Graceful shutdown of the real web process (`keel web`, what the image runs) with a real SSE
// client. Two web processes sit behind a stand-in load balancer (a loopback HTTP proxy that sends
// each request to the first backend whose /readyz answers 200, as a health-checking balancer
// does). While a writer appends events to a session, web A gets SIGTERM: its readiness turns
// false, every stream on it ends with a `retry:` hint and an `event: shutdown`, the process exits
// 0, and an EventSource client (the `eventsource` package, a WHATWG implementation) reconnects
// through the balancer to web B with Last-Event-ID and receives every seq exactly once.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createPool, EngineClient, type Pool } from "@keel/core";
import { createTestDatabase, waitFor } from "@keel/test/db";
import { api } from "@keel/core/contract/api";
import { adminClient, startServer, type RunningServer } from "./harness.js";

let pool: Pool;
let drop: () => Promise<void>;
let webA: RunningServer;
let webB: RunningServer;
let balancer: http.Server;
let lbUrl = "";
let key = "";
let teamId = "";
let sessionId = "";

const GRACE_MS = 5_000;

/** Forwards each request to the first backend that is ready right now. */
function startBalancer(backends: () => string[]): Promise<http.Server> {
  const server = http.createServer(async (req, res) => {
    let target: string | undefined;
    // Like a balancer with health checks: wait (a while) for a ready backend rather than fail.
    for (const deadline = Date.now() + 15_000; !target && Date.now() < deadline;) {
      for (const b of backends()) {
        if (
          await fetch(`${b}/readyz`, { signal: AbortSignal.timeout(5_000) }).then(
            (r) => r.ok,
            () => false,
          )
        ) {
          target = b;
          break;
        }
      }
      if (!target) await new Promise((r) => setTimeout(r, 50));
    }
    if (!target) return void res.writeHead(502).end();
    const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on("error", () => res.destroy());
    res.on("close", () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  pool = createPool(db.url, { max: 4 });
  const env = { KEEL_SHUTDOWN_DELAY_MS: "300", KEEL_SHUTDOWN_GRACE_MS: String(GRACE_MS), KEEL_LOG_LEVEL: "info" };
  [webA, webB] = await Promise.all([startServer(db.url, env, undefined, "keel"), startServer(db.url, env, undefined, "keel")]);
  const admin = await adminClient(webA.url, "sse");
  teamId = admin.teamId;
  key = admin.apiKey;
  const agent = await admin.client.call(api.agents.create, { body: { name: "streamer", model: "demo" } });
  sessionId = (await admin.client.call(api.sessions.create, { body: { agentId: agent.id } })).id;
  balancer = await startBalancer(() => [webA.url, webB.url]);
  lbUrl = `http://127.0.0.1:${(balancer.address() as AddressInfo).port}`;
}, 240_000);

afterAll(async () => {
  balancer?.closeAllConnections();
  balancer?.close();
  await webA?.stop();
  await webB?.stop();
  await pool?.end();
  await drop?.();
});

describe("graceful shutdown", () => {
  test("SIGTERM: readiness false, streams end with a retry hint, exit 0, and the client resumes on web B missing nothing", async () => {
    const engine = new EngineClient({ pool });
    let writing = true;
    let written = 0;
    // The writer: one user message every few ms, straight into the log (no worker; runs queue).
    const writer = (async () => {
      while (writing) {
        await engine.postMessage({ teamId, sessionId, content: `m${written + 1}`, onBusy: "enqueue" });
        written++;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    // A raw client straight on web A, to see the bytes of the ending.
    const raw = await fetch(`${webA.url}/api/v1/sessions/${sessionId}/stream`, { headers: { authorization: `Bearer ${key}` } });
    const rawText = (async () => {
      const dec = new TextDecoder();
      let text = "";
      for await (const chunk of raw.body! as unknown as AsyncIterable<Uint8Array>) text += dec.decode(chunk as Uint8Array, { stream: true });
      return text; // resolves when web A ends the stream
    })();

    // The EventSource client, through the balancer (it picks web A while A is ready).
    const seqs: number[] = [];
    const opens: string[] = [];
    let shutdownEvents = 0;
    const es = new EventSource(`${lbUrl}/api/v1/sessions/${sessionId}/stream`, {
      fetch: (input, init) => {
        opens.push(new Headers(init?.headers).get("last-event-id") ?? "(none)");
        return fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), authorization: `Bearer ${key}` } });
      },
    });
    es.addEventListener("user_message", (e) => seqs.push(Number(e.lastEventId)));
    es.addEventListener("shutdown", () => shutdownEvents++);
    await waitFor(() => seqs.length >= 20, { what: "events through web A" });
    expect(opens).toEqual(["(none)"]);

    const exited = new Promise<number | null>((r) => webA.proc.once("exit", (code) => r(code)));
    webA.proc.kill("SIGTERM");
    // Readiness turns false while web A still answers (the shutdown delay is 300 ms).
    const ready = await waitFor(
      async () => {
        const r = await fetch(`${webA.url}/readyz`).catch(() => null);
        return r && r.status === 503 ? ((await r.json()) as { draining: boolean }) : null;
      },
      { what: "web A's /readyz to answer 503" },
    );
    expect(ready.draining).toBe(true);

    const ending = await rawText;
    expect(ending).toMatch(/retry: \d+\nevent: shutdown\ndata: \{"reason":"[^"]+","retryMs":\d+\}\n\n$/);
    expect(await waitFor(() => exited.then((c) => ({ code: c })), { timeoutMs: GRACE_MS + 5_000, what: "web A to exit" })).toEqual({ code: 0 });
    expect(webA.output()).toContain('"msg":"web stopped"');

    // The client reconnected through the balancer to web B with the last id it had seen.
    await waitFor(() => opens.length >= 2 && seqs.length > 0, { what: "the reconnect" });
    expect(shutdownEvents).toBeGreaterThanOrEqual(1);
    writing = false;
    await writer;
    await waitFor(() => seqs.at(-1) === written, { timeoutMs: 20_000, what: `all ${written} events` }).catch((e: Error) => {
      throw new Error(`${e.message}; opens ${JSON.stringify(opens)}; seqs ${JSON.stringify(seqs)}; readyState ${es.readyState}`);
    });
    es.close();
    expect(opens[1]).toMatch(/^\d+$/);
    expect(Number(opens[1])).toBeGreaterThanOrEqual(20);
    expect(seqs).toEqual(Array.from({ length: written }, (_, i) => i + 1));
    // Every reconnect after web A left went to web B (web A is gone; the balancer checks readiness).
    expect(opens.slice(1).every((id) => /^\d+$/.test(id))).toBe(true);
  });
});
