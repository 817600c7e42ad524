// Web process figures (issue 4), against the real built web process (`keel web`, what the image
// runs) and a real PostgreSQL:
//   1. SSE delivery latency: event committed (the writer's COMMIT resolved) → the frame with that
//      seq read by a client, with 1, 100 and 1000 concurrent streams (one session each; events go
//      to random sessions), and fan-out (100 / 1000 streams on one session, one event).
//   2. Session view server time for a session of 10,000 events: the page's HTML and the API
//      calls the page makes (/me, the session row, the stream replaying the whole log), and
//      GET /events pages as an API client reads them.
//   3. Sessions list memory: web process RSS while a team grows to 100,000 sessions (bulk SQL
//      inserts) and the whole list is paged through at each size; before / after / peak.
//
//   npm run bench:web                (= tsx bench/src/web.ts; about 3–5 minutes)
//   BENCH_DATABASE_URL=postgres://… npm run bench:web
// Knobs: BENCH_WEB_SSE_SAMPLES (200), BENCH_WEB_VIEW_RUNS (20), BENCH_WEB_SESSIONS (100000).
// Markdown to stdout, raw numbers to bench/.tmp/web-results.json, progress to stderr.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { freePort, startEmbeddedPostgres } from "@keel/cli/embedded-postgres";
import { createPool, EngineClient, migrate } from "@keel/core";
// @ts-expect-error plain JS module shared with npm start and the tests
import { ensureWebBuild } from "@keel/server/build";
import { dist, fmtMs, load, log, nowMs, sleep, type Dist } from "./util.js";

const repo = path.resolve(import.meta.dirname, "../..");
const SSE_SAMPLES = Number(process.env.BENCH_WEB_SSE_SAMPLES ?? 200);
const VIEW_RUNS = Number(process.env.BENCH_WEB_VIEW_RUNS ?? 20);
const TOTAL_SESSIONS = Number(process.env.BENCH_WEB_SESSIONS ?? 100_000);
const ADMIN = { email: "bench@example.com", password: "bench password long" };

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => log(`cleanup: ${(e as Error).message}`));
}
for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => void cleanup().finally(() => process.exit(130)));

// ---- setup: Postgres, database, build, the web process ----
let adminUrl = process.env.BENCH_DATABASE_URL;
if (!adminUrl) {
  const dir = path.join(repo, `bench/.tmp/pg-web-${process.pid}`);
  const epg = await startEmbeddedPostgres({ dir, persistent: false });
  cleanups.push(async () => (await epg.stop(), await rm(dir, { recursive: true, force: true })));
  adminUrl = epg.url("postgres");
}
const dbName = `bench_web_${Math.random().toString(36).slice(2, 8)}`;
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
const pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
await admin.query(`CREATE DATABASE ${dbName}`);
await admin.end();
cleanups.push(async () => {
  const a = new pg.Client({ connectionString: adminUrl });
  await a.connect();
  await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await a.end();
});
const dbUrl = Object.assign(new URL(adminUrl), { pathname: `/${dbName}` }).toString();
await migrate({ connectionString: dbUrl, migrationsDir: path.join(repo, "prisma/migrations") });
log("building the web process if stale");
const built = ensureWebBuild() as { rebuilt: boolean; ms: number };
if (built.rebuilt) log(`web built in ${Math.round(built.ms / 1000)} s`);

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const web: ChildProcess = spawn(process.execPath, [path.join(repo, "cli/bin/keel.mjs"), "web"], {
  cwd: repo,
  env: {
    ...process.env,
    NODE_ENV: "production",
    NEXT_TELEMETRY_DISABLED: "1",
    DATABASE_URL: dbUrl,
    PORT: String(port),
    KEEL_HOST: "127.0.0.1",
    KEEL_ADMIN_EMAIL: ADMIN.email,
    KEEL_ADMIN_PASSWORD: ADMIN.password,
    KEEL_ADMIN_TEAM: "bench",
    KEEL_LOG_LEVEL: "warn",
    KEEL_SECRETS_KEY: Buffer.alloc(32, 1).toString("base64"),
  },
  stdio: ["ignore", "ignore", "inherit"],
});
cleanups.push(async () => {
  if (web.exitCode !== null) return;
  const exited = new Promise((r) => web.once("exit", r));
  web.kill("SIGTERM");
  await exited;
});
for (let i = 0; ; i++) {
  if (
    await fetch(`${base}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break;
  if (web.exitCode !== null || i > 600) throw new Error("the web process did not become ready");
  await sleep(100);
}
const pool = createPool(dbUrl, { max: 4 });
cleanups.push(() => pool.end());
const rssMiB = async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${web.pid}/status`, "utf8"))![1]) / 1024;

const login = await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ADMIN) });
const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
const { csrfToken, teamId } = (await login.json()) as { csrfToken: string; teamId: string };
const keyRes = await fetch(`${base}/api/v1/api-keys`, {
  method: "POST",
  headers: { "content-type": "application/json", cookie, "x-csrf-token": csrfToken },
  body: JSON.stringify({ name: "bench", role: "admin" }),
});
const auth = { authorization: `Bearer ${((await keyRes.json()) as { key: string }).key}` };
const agentRes = await fetch(`${base}/api/v1/agents`, {
  method: "POST",
  headers: { ...auth, "content-type": "application/json" },
  body: JSON.stringify({ name: "bench", model: "demo" }),
});
const agentId = ((await agentRes.json()) as { id: string }).id;
const engine = new EngineClient({ pool });

/** Bulk-creates n sessions of the bench team (created_at spread backwards one second apart). */
async function createSessions(n: number, offset = 0): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO sessions (team_id, agent_id, agent_version, title, created_at, updated_at)
     SELECT $1, $2, 1, 'bench session ' || g, now() - (g || ' seconds')::interval, now() FROM generate_series($3::int + 1, $3::int + $4::int) g RETURNING id`,
    [teamId, agentId, offset, n],
  );
  return rows.map((r) => r.id);
}

// ---- 1. SSE delivery latency ----
type Stream = { abort: AbortController; ready: Promise<void> };
/** Opens a stream; `onSeq` gets (sessionId, seq) for each stored event frame as it is read. */
function openStream(sessionId: string, onSeq: (sessionId: string, seq: number, at: number) => void): Stream {
  const abort = new AbortController();
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  void (async () => {
    const res = await fetch(`${base}/api/v1/sessions/${sessionId}/stream`, { headers: auth, signal: abort.signal });
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of res.body!) {
      const at = nowMs();
      buf += dec.decode(chunk as Uint8Array, { stream: true });
      resolveReady();
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const m = /^id: (\d+)$/m.exec(frame);
        if (m) onSeq(sessionId, Number(m[1]), at);
      }
    }
  })().catch((e: unknown) => {
    if ((e as Error).name !== "AbortError") log(`stream ${sessionId}: ${(e as Error).message}`);
  });
  return { abort, ready };
}

async function sseLatency(streams: number, mode: "spread" | "fanout"): Promise<Dist & { streams: number; mode: string }> {
  const sessions = await createSessions(mode === "spread" ? streams : 1, 10_000_000 + streams * (mode === "spread" ? 1 : 7));
  const received = new Map<string, number[]>(); // "session:seq" → receive times
  const open = Array.from({ length: streams }, (_, i) =>
    openStream(sessions[i % sessions.length]!, (s, seq, at) => {
      const k = `${s}:${seq}`;
      const list = received.get(k);
      if (list) list.push(at);
      else received.set(k, [at]);
    }),
  );
  await Promise.all(open.map((s) => s.ready));
  await sleep(500);
  const samples: number[] = [];
  const n = mode === "spread" ? SSE_SAMPLES : Math.max(10, Math.round(SSE_SAMPLES / 10));
  const sent: { key: string; at: number; expect: number }[] = [];
  for (let i = 0; i < n; i++) {
    const sessionId = sessions[Math.floor(Math.random() * sessions.length)]!;
    const r = await engine.postMessage({ teamId, sessionId, content: `bench ${i}`, onBusy: "enqueue" });
    sent.push({ key: `${sessionId}:${r.seq}`, at: nowMs(), expect: mode === "spread" ? 1 : streams });
    await sleep(mode === "spread" ? 5 + Math.random() * 15 : 200);
  }
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && sent.some((s) => (received.get(s.key)?.length ?? 0) < s.expect)) await sleep(50);
  let lost = 0;
  for (const s of sent) {
    const got = received.get(s.key) ?? [];
    lost += s.expect - got.length;
    for (const at of got) samples.push(at - s.at);
  }
  for (const s of open) s.abort.abort();
  if (lost) log(`sse ${mode} ${streams}: ${lost} deliveries missing after 30 s`);
  return { ...dist(samples), streams, mode };
}

// ---- 2. Session view of 10,000 events ----
async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}
const get = (p: string, h: Record<string, string> = auth) =>
  fetch(base + p, { headers: h }).then((r) => {
    if (!r.ok) throw new Error(`${p}: ${r.status}`);
    return r.text();
  });

async function sessionView(): Promise<Record<string, Dist>> {
  const [sessionId] = await createSessions(1, 20_000_000);
  await pool.query(
    `INSERT INTO session_events (session_id, seq, type, payload)
     SELECT $1, g, CASE WHEN g % 2 = 1 THEN 'user_message' ELSE 'assistant_message' END,
            CASE WHEN g % 2 = 1 THEN json_build_object('role', 'user', 'content', 'question ' || g || repeat(' lorem ipsum', 10))
                 ELSE json_build_object('message', json_build_object('role', 'assistant', 'content', 'answer ' || g || repeat(' dolor sit amet', 15)), 'usage', null) END
     FROM generate_series(1, 10000) g`,
    [sessionId],
  );
  await pool.query("UPDATE sessions SET last_seq = 10000 WHERE id = $1", [sessionId]);
  const out: Record<string, number[]> = { page: [], me: [], row: [], stream: [], events: [] };
  const browser = { cookie };
  for (let i = 0; i < VIEW_RUNS + 2; i++) {
    const warm = i < 2;
    const t = {
      page: await timed(() => get(`/sessions/${sessionId}`, browser)),
      me: await timed(() => get("/api/v1/me", browser)),
      row: await timed(() => get(`/api/v1/sessions?q=${sessionId}&limit=1`, browser)),
      // The page's EventSource from seq 0: time until the 10,000th event has arrived.
      stream: await timed(async () => {
        let last = 0;
        let done!: () => void;
        const finished = new Promise<void>((r) => (done = r));
        const s = openStream(sessionId!, (_s, seq) => {
          last = seq;
          if (last === 10_000) done();
        });
        await finished;
        s.abort.abort();
      }),
      events: await timed(async () => {
        for (let after = 0; after < 10_000; after += 5000) await get(`/api/v1/sessions/${sessionId}/events?after=${after}&limit=5000`);
      }),
    };
    if (!warm) for (const [k, v] of Object.entries(t)) out[k]!.push(v);
  }
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, dist(v)]));
}

// ---- 3. Sessions list memory while the team grows ----
/** Pages through the whole list (200 a page); returns each page's time. */
async function pageThrough(): Promise<number[]> {
  const times: number[] = [];
  let cursor: string | null = null;
  do {
    let body = "";
    times.push(await timed(async () => (body = await get(`/api/v1/sessions?limit=200${cursor ? `&cursor=${cursor}` : ""}`))));
    cursor = (JSON.parse(body) as { nextCursor: string | null }).nextCursor;
  } while (cursor);
  return times;
}

async function listMemory(): Promise<{
  steps: { sessions: number; pages: number; rssBeforeMiB: number; rssAfterMiB: number; rssPeakMiB: number; page: Dist; search: Dist }[];
  startMiB: number;
  peakMiB: number;
  repeatMiB: number[];
}> {
  let peak = 0;
  const sampler = setInterval(
    () =>
      void rssMiB().then(
        (r) => (peak = Math.max(peak, r)),
        () => {},
      ),
    50,
  );
  const startMiB = await rssMiB();
  const steps = [];
  let have = (await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM sessions WHERE team_id = $1", [teamId])).rows[0]!.n;
  for (const target of [1_000, 10_000, 50_000, TOTAL_SESSIONS].filter((t, i, a) => t <= TOTAL_SESSIONS && a.indexOf(t) === i)) {
    while (have < target) {
      const n = Math.min(10_000, target - have);
      await createSessions(n, have);
      have += n;
    }
    await pool.query("ANALYZE sessions");
    const rssBeforeMiB = await rssMiB();
    peak = rssBeforeMiB;
    const pageTimes = await pageThrough();
    const pages = pageTimes.length;
    // What the session page asks for on every event: its own row, found by id through ?q=.
    const search: number[] = [];
    for (let i = 0; i < 10; i++) search.push(await timed(() => get(`/api/v1/sessions?q=00000000-0000-4000-8000-00000000000${i}&limit=1`)));
    steps.push({ sessions: have, pages, rssBeforeMiB, rssAfterMiB: await rssMiB(), rssPeakMiB: peak, page: dist(pageTimes), search: dist(search) });
    log(
      `list: ${have} sessions, ${pages} pages, p50 ${fmtMs(dist(pageTimes).p50)}, RSS ${rssBeforeMiB.toFixed(0)} → ${(await rssMiB()).toFixed(0)} MiB (peak ${peak.toFixed(0)})`,
    );
  }
  // Leak check: more full passes at the largest size. Flat RSS across passes = nothing retained.
  const repeatMiB: number[] = [];
  for (let i = 0; i < 3; i++) {
    await pageThrough();
    repeatMiB.push(await rssMiB());
  }
  log(`list: RSS after 3 more passes ${repeatMiB.map((r) => r.toFixed(0)).join(", ")} MiB`);
  clearInterval(sampler);
  return { steps, startMiB, peakMiB: Math.max(peak, ...steps.map((s) => s.rssPeakMiB)), repeatMiB };
}

try {
  const loadStart = load();
  log(`load ${loadStart}; PostgreSQL ${pgVersion}; web pid ${web.pid}, RSS ${(await rssMiB()).toFixed(0)} MiB`);
  const sse = [];
  for (const n of [1, 100, 1000]) {
    sse.push(await sseLatency(n, "spread"));
    log(`sse spread ${n}: p50 ${fmtMs(sse.at(-1)!.p50)} p99 ${fmtMs(sse.at(-1)!.p99)} (n=${sse.at(-1)!.n})`);
  }
  for (const n of [100, 1000]) {
    sse.push(await sseLatency(n, "fanout"));
    log(`sse fan-out ${n}: p50 ${fmtMs(sse.at(-1)!.p50)} p99 ${fmtMs(sse.at(-1)!.p99)} (n=${sse.at(-1)!.n})`);
  }
  const loadAfterSse = load();
  const view = await sessionView();
  log(`session view: stream p50 ${fmtMs(view.stream!.p50)}`);
  const list = await listMemory();
  const loadEnd = load();

  const row = (name: string, d: Dist) => `| ${name} | ${d.n} | ${fmtMs(d.p50)} | ${fmtMs(d.p99)} | ${fmtMs(d.max)} |`;
  const md = [
    `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, PostgreSQL ${pgVersion}, Node ${process.version}. Load average (1/5/15 min): start ${loadStart}; after SSE ${loadAfterSse}; end ${loadEnd}.`,
    "",
    "| SSE delivery (commit → frame read by the client) | samples | p50 | p99 | max |",
    "|---|---|---|---|---|",
    ...sse.map((s) =>
      row(
        s.mode === "spread"
          ? `${s.streams} stream(s), one session each, events to random sessions`
          : `${s.streams} streams on one session (fan-out; every delivery counted)`,
        s,
      ),
    ),
    "",
    `| Session view, 10,000 events (server time, ${VIEW_RUNS} runs after 2 warm-ups) | runs | p50 | p99 | max |`,
    "|---|---|---|---|---|",
    row("page HTML (`GET /sessions/{id}`, server render)", view.page!),
    row("`GET /api/v1/me` (the shell)", view.me!),
    row("`GET /api/v1/sessions?q={id}&limit=1` (the page's session row)", view.row!),
    row("SSE from seq 0 until the 10,000th event is read (the page's EventSource)", view.stream!),
    row("`GET /events?limit=5000` twice (an API client reading the log)", view.events!),
    "",
    "| Sessions in the team | list pages of 200 | page p50 | page p99 | `?q=<id>` p50 | web RSS before paging | after | peak |",
    "|---|---|---|---|---|---|---|---|",
    ...list.steps.map(
      (s) =>
        `| ${s.sessions.toLocaleString("en")} | ${s.pages} | ${fmtMs(s.page.p50)} | ${fmtMs(s.page.p99)} | ${fmtMs(s.search.p50)} | ${s.rssBeforeMiB.toFixed(0)} MiB | ${s.rssAfterMiB.toFixed(0)} MiB | ${s.rssPeakMiB.toFixed(0)} MiB |`,
    ),
    "",
    `Web process RSS at start of the list measurement: ${list.startMiB.toFixed(0)} MiB; peak over all steps: ${list.peakMiB.toFixed(0)} MiB; after each of 3 more full passes over ${list.steps.at(-1)!.sessions.toLocaleString("en")} sessions: ${list.repeatMiB.map((r) => `${r.toFixed(0)} MiB`).join(", ")}.`,
  ].join("\n");
  console.log(md);
  await mkdir(path.join(repo, "bench/.tmp"), { recursive: true });
  await writeFile(path.join(repo, "bench/.tmp/web-results.json"), JSON.stringify({ sse, view, list, loadStart, loadAfterSse, loadEnd }, null, 2));
} finally {
  await cleanup();
}
