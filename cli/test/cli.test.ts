// The keel CLI as a user runs it: real processes, real embedded Postgres, real signals.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect, test } from "vitest";
import { createPool, EngineClient, readAllEvents, Tenancy } from "@keel/core";
import { freePort } from "../src/embedded-postgres.js";
import { waitFor } from "@keel/test/db";
import { startFakeOpenAI, textStream, type FakeOpenAI } from "@keel/core/testing/fake-openai";

const keel = path.resolve(import.meta.dirname, "../bin/keel.mjs");
const live = new Set<ChildProcess>();
const dirs: string[] = [];

type Proc = { child: ChildProcess; output: () => string; exit: Promise<number | null>; exited: () => boolean };

/** Waits for a log line; fails at once (with the output) if the process exits first. */
async function waitForOutput(p: Proc, text: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!p.output().includes(text)) {
    if (p.exited()) throw new Error(`process exited before printing ${text}:\n${p.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${text}:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function start(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [keel, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  let done = false;
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => (live.delete(child), (done = true), resolve(code))));
  return { child, output: () => out, exit, exited: () => done };
}

afterEach(() => {
  const left = live.size;
  for (const c of live) c.kill("SIGKILL");
  expect(left, "a keel process was left running").toBe(0);
});
let provider: FakeOpenAI;
beforeAll(async () => {
  provider = await startFakeOpenAI();
});
afterAll(async () => {
  await provider?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test("keel up starts embedded Postgres, migrates, runs a worker and the dashboard; data survives a restart", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "keel-up-"));
  dirs.push(dataDir);
  const port = await freePort();
  const webPort = await freePort();
  const env = {
    KEEL_DATA_DIR: dataDir,
    KEEL_PG_PORT: String(port),
    PORT: String(webPort),
    KEEL_LOG_LEVEL: "info",
    DATABASE_URL: "",
    KEEL_ADMIN_EMAIL: "",
    KEEL_ADMIN_PASSWORD: "",
    KEEL_SECRETS_KEY: "",
    KEEL_OUTBOUND_HOSTS: "127.0.0.1",
  };

  const first = start(["up"], env);
  await waitForOutput(first, '"msg":"keel is up"');
  // The dashboard answers, and the generated admin (password kept in the data dir) can log in.
  const web = `http://127.0.0.1:${webPort}`;
  expect((await fetch(`${web}/healthz`)).status).toBe(200);
  expect((await fetch(`${web}/readyz`)).status).toBe(200);
  const adminPassword = (await readFile(path.join(dataDir, "admin-password"), "utf8")).trim();
  expect(first.output()).toContain(`log in as admin@keel.local with the password in ${path.join(dataDir, "admin-password")}`);
  expect(first.output()).not.toContain(adminPassword);
  const login = await fetch(`${web}/api/v1/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: "admin@keel.local", password: adminPassword }),
  });
  expect(login.status).toBe(200);

  // A team secret set through the API reaches the worker: it names the agent's provider key, and
  // the provider (a loopback stand-in) receives it. Before the fix the worker had no secrets key.
  const h = {
    "content-type": "application/json",
    cookie: login.headers.get("set-cookie")!.split(";")[0]!,
    "x-csrf-token": ((await login.json()) as { csrfToken: string }).csrfToken,
  };
  const call = async (method: string, p: string, body?: object) => {
    const res = await fetch(`${web}/api/v1${p}`, { method, headers: h, body: body && JSON.stringify(body) });
    expect(res.status, `${method} ${p}: ${res.status}`).toBeLessThan(300);
    return res.status === 204 ? null : ((await res.json()) as { id: string });
  };
  await call("PUT", "/secrets/PROVIDER_KEY", { value: "sk-up-team-secret" });
  provider.enqueue({ kind: "stream", chunks: textStream("paid for by the team") });
  const keyed = await call("POST", "/agents", {
    name: "keyed",
    model: "gpt-test",
    provider: { kind: "openai-compatible", baseUrl: provider.url, apiKeySecret: "PROVIDER_KEY", maxRetries: 0 },
  });
  const keyedSession = await call("POST", "/sessions", { agentId: keyed!.id });
  await call("POST", `/sessions/${keyedSession!.id}/messages`, { content: "use the team key" });
  type Ev = { type: string; payload: { message?: unknown } };
  const keyedEvents = await waitFor(
    async () => {
      const evs = ((await (await fetch(`${web}/api/v1/sessions/${keyedSession!.id}/events`, { headers: h })).json()) as { events: Ev[] }).events;
      return evs.some((e) => e.type === "assistant_message" || e.type === "run_failed") && evs;
    },
    { timeoutMs: 60_000, what: "the keyed agent's reply" },
  );
  expect(keyedEvents.filter((e) => e.type === "model_error" || e.type === "run_failed").map((e) => e.payload.message)).toEqual([]);
  expect(provider.requests.at(-1)!.headers.authorization).toBe("Bearer sk-up-team-secret");
  const password = (await readFile(path.join(dataDir, "password"), "utf8")).trim();
  const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;

  let pool = createPool(url);
  const tenancy = new Tenancy({ pool });
  const team = await tenancy.createTeam({ slug: "up", name: "Up" });
  const agent = await tenancy.createAgent(team.id, { name: "a", model: "demo" });
  const session = await tenancy.createSession(team.id, { agentId: agent.id });
  const posted = await new EngineClient({ pool }).postMessage({ teamId: team.id, sessionId: session.id, content: "hello keel" });
  await waitFor(async () => (await readAllEvents(pool, session.id)).some((e) => e.type === "assistant_message"), { what: "reply" });
  await pool.end();

  first.child.kill("SIGTERM");
  expect(await first.exit).toBe(0);

  const second = start(["up"], env);
  await waitForOutput(second, '"msg":"keel is up"');
  expect(second.output()).toContain('"applied":0'); // already migrated: nothing to apply
  pool = createPool(url);
  const before = await readAllEvents(pool, session.id);
  expect(before.map((e) => e.type)).toEqual(["user_message", "assistant_message"]);
  expect(before[0]!.runId).toBe(posted.runId);
  await new EngineClient({ pool }).postMessage({ teamId: team.id, sessionId: session.id, content: "still here?" });
  await waitFor(async () => (await readAllEvents(pool, session.id)).length === 4, { what: "second reply" });
  await pool.end();
  second.child.kill("SIGINT");
  expect(await second.exit).toBe(0);
}, 300_000);

test("keel up whose embedded Postgres was killed under it still stops on SIGTERM, saying so (exit 1); the next start recovers", async () => {
  const dataDir = await mkdtemp(path.join(tmpdir(), "keel-up-pgdied-"));
  dirs.push(dataDir);
  const env = {
    KEEL_DATA_DIR: dataDir,
    KEEL_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
    KEEL_LOG_LEVEL: "info",
    DATABASE_URL: "",
    KEEL_ADMIN_EMAIL: "",
    KEEL_ADMIN_PASSWORD: "",
    KEEL_SECRETS_KEY: "",
  };
  const up = start(["up"], env);
  await waitForOutput(up, '"msg":"keel is up"');
  const postmaster = Number((await readFile(path.join(dataDir, "pgdata", "postmaster.pid"), "utf8")).split("\n")[0]);
  process.kill(postmaster, "SIGKILL");
  await waitFor(
    () => {
      try {
        process.kill(postmaster, 0);
        return false;
      } catch {
        return true;
      }
    },
    { what: "postgres gone" },
  );
  up.child.kill("SIGTERM");
  expect(await up.exit).toBe(1);
  expect(up.output()).toMatch(/"part":"embedded Postgres".*had already stopped \(crashed or killed\).*could not stop cleanly/);
  const again = start(["up"], env);
  await waitForOutput(again, '"msg":"keel is up"');
  again.child.kill("SIGTERM");
  expect(await again.exit).toBe(0);
}, 300_000);

test("keel migrate exits non-zero with a clear message when the database is unreachable or the URL is invalid", async () => {
  const down = start(["migrate"], { DATABASE_URL: "postgresql://postgres@127.0.0.1:1/keel" });
  expect(await down.exit).toBe(1);
  expect(down.output()).toMatch(/keel migrate: cannot connect to the database/);
  const bad = start(["migrate"], { DATABASE_URL: "not a url" });
  expect(await bad.exit).toBe(2);
  expect(bad.output()).toMatch(/DATABASE_URL must be a postgresql:\/\/ URL/);
  const unknown = start(["frobnicate"], {});
  expect(await unknown.exit).toBe(2);
  expect(unknown.output()).toMatch(/unknown command "frobnicate"/);
});
