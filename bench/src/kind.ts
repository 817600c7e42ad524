// Claim → first exec on a real kind cluster (kind/up.sh must have run): N new sessions, each asked
// to "run true" through the demo model; the time from posting the message to the exec's
// tool_result event covers the run's claim, the model turn, the SandboxClaim, the pod becoming
// ready (cold) or being adopted from the warm pool, and the exec itself. After each sample the
// session's SandboxClaim is deleted (outside the timing), so every sample starts a pod.
// Usage: npm run bench:kind -- [N=20] [label]   (label: e.g. "cold" or "warm pool 4")
import { Api, releaseSandbox } from "@keel/e2e/kind";
import { distTable, load, nowMs } from "./util.js";

const n = Number(process.argv[2] ?? 20);
const label = process.argv[3] ?? "claim → first exec";
const api = await Api.login();
const samples: number[] = [];
for (let i = 0; i < n; i++) {
  const { sessionId } = await api.agentSession(`bench-kind-${Date.now()}-${i}`);
  const t0 = nowMs();
  await api.call("POST", `/api/v1/sessions/${sessionId}/messages`, { content: "run true" });
  for (;;) {
    const events = await api.events(sessionId);
    if (events.some((e) => e.type === "tool_result")) break;
    if (nowMs() - t0 > 600_000) throw new Error(`session ${sessionId}: no exec result after 10 min`);
    await new Promise((r) => setTimeout(r, 100));
  }
  samples.push(nowMs() - t0);
  // Outside the timing: free the node (a 2-core kind node fits ~12 sandbox pods at 100m requests).
  releaseSandbox(sessionId);
  process.stderr.write(`${i + 1}/${n}: ${Math.round(samples.at(-1)!)} ms\n`);
}
process.stdout.write([...distTable("kind: message → exec result in a real pod", [[label, samples]]), "", `load: ${load()}`].join("\n") + "\n");
