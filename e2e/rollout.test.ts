// `kubectl rollout restart` of the worker and the web Deployments while sessions are mid-turn
// (each agent's exec is running in its sandbox pod): every session's run completes, seqs stay
// gapless, and no command runs twice. (8 sessions: a 2-CPU kind node holds ~12 sandbox pods.)
import { afterAll, beforeAll, expect, test } from "vitest";
import { Api, kubectl, releaseSandbox, sandboxPod, waitFor } from "./kind.ts";

const N = Number(process.env.KEEL_E2E_ROLLOUT_SESSIONS ?? 8);
let api: Api;
const sessions: string[] = [];

beforeAll(async () => {
  api = await Api.login();
  for (let i = 0; i < N; i++) sessions.push((await api.agentSession(`e2e-rollout-${Date.now()}-${i}`)).sessionId);
});

afterAll(() => {
  for (const s of sessions) releaseSandbox(s);
});

test(`rollout restart of worker and web with ${N} sessions mid-turn: every run completes, seqs gapless, each command ran once`, async () => {
  for (const s of sessions) await api.call("POST", `/api/v1/sessions/${s}/messages`, { content: "run echo ran >> once.txt && sleep 4 && echo done" });
  // Mid-turn: at least one exec has started in its pod.
  await waitFor(() => sessions.some((s) => {
    const p = sandboxPod(s);
    return p !== null && kubectl(["-n", p.namespace, "exec", p.name, "--", "cat", "/workspace/once.txt"], { allowFail: true }).stdout.includes("ran");
  }), { what: "a first exec to start" });
  kubectl(["-n", "keel", "rollout", "restart", "deployment/keel-worker", "deployment/keel-web"]);
  kubectl(["-n", "keel", "rollout", "status", "deployment/keel-worker", "--timeout=300s"]);
  kubectl(["-n", "keel", "rollout", "status", "deployment/keel-web", "--timeout=300s"]);

  // The API answers again (a new web pod) and logs in with the same admin.
  api = await waitFor(() => Api.login(), { what: "the API after the web rollout" });
  for (const s of sessions) {
    const events = await waitFor(async () => {
      const ev = await api.events(s);
      return ev.some((e) => e.type === "assistant_message" && JSON.stringify(e.payload).includes("The tool returned")) ? ev : null;
    }, { what: `session ${s}'s run to finish`, timeoutMs: 300_000 });
    const seqs = events.map((e) => Number(e.seq));
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const pod = sandboxPod(s)!;
    expect(kubectl(["-n", pod.namespace, "exec", pod.name, "--", "cat", "/workspace/once.txt"]).stdout.trim().split("\n")).toEqual(["ran"]);
  }
});
