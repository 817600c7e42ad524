// SessionSandboxes' edges that the browser test does not reach: a web process whose driver cannot
// be made, a sandbox made by another driver, an agent whose sandbox policy is invalid, an archived
// session, and a ready sandbox whose runtime is gone (real bubblewrap, real Postgres); a member's
// start is audited.
import { describe, expect, it } from "vitest";
import { SandboxUnavailableError } from "../../src/sandbox/errors.js";
import { killProcess } from "../../src/sandbox/local-process.js";
import { SandboxStore } from "../../src/sandbox/store.js";
import { sessionPolicyResolver, SessionSandboxes } from "../../src/sandbox/view.js";
import { useFixture } from "../fixture.js";
import { policy, useSandboxEnv } from "./helpers.js";

const f = useFixture();
const env = useSandboxEnv();
const noSecrets = { resolve: async () => ({}) };

describe("session sandboxes (view)", () => {
  it("says why files cannot be shown when this process has no working driver", async () => {
    const store = new SandboxStore(f.pool);
    const sessionId = await f.newSession();
    await env.driver({ store }).acquire(sessionId, f.teamId, policy());
    const broken = new SessionSandboxes({
      db: f.pool,
      store,
      driver: () => {
        throw new SandboxUnavailableError("the local sandbox driver cannot use /nope: EACCES");
      },
    });
    const v = await broken.describe(f.teamId, sessionId);
    expect(v).toMatchObject({ sandbox: { state: "ready", driver: "local" }, filesAvailable: false });
    expect(v.note).toBe("The sandbox is running. Its files cannot be shown: the local sandbox driver cannot use /nope: EACCES");
    await expect(broken.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({
      status: 503,
      message: "the local sandbox driver cannot use /nope: EACCES",
    });
    // A sandbox of another driver (rows record which made it) is named, not half-shown.
    const other = new SessionSandboxes({ db: f.pool, store, driver: () => ({ ...env.driver(), name: "kubernetes" }) as never });
    expect((await other.describe(f.teamId, sessionId)).note).toMatch(/made by the local driver; this web process uses kubernetes/);
    await expect(other.readFile(f.teamId, sessionId, "x")).rejects.toMatchObject({ status: 503 });
  });

  it("answers 503 (and offers start) when a ready sandbox's runtime is gone; start restarts it on the same workspace", async () => {
    const store = new SandboxStore(f.pool);
    const d = env.driver({ store });
    const sessionId = await f.newSession();
    const h = await d.acquire(sessionId, f.teamId, policy());
    await d.writeFile(h, "kept.txt", "still here");
    const rec = await env.record(f.teamId, sessionId);
    const view = new SessionSandboxes({ db: f.pool, store, driver: () => d, resolvePolicy: sessionPolicyResolver(f.pool, noSecrets) });
    await killProcess(rec.childPid, (rec as unknown as { childStartTime: string }).childStartTime); // as after a reboot
    await expect(view.listFiles(f.teamId, sessionId, ".")).rejects.toMatchObject({ status: 503, code: "sandbox_unavailable" });
    // A member's start is audited with the sandbox it started.
    const member = { teamId: f.teamId, role: "member" as const, actor: "user:ops@acme.test", userId: null, apiKeyId: null };
    expect(await view.start(member, sessionId)).toMatchObject({ sandbox: { id: h.sandboxId, state: "ready" }, filesAvailable: true });
    const { rows } = await f.pool.query("SELECT actor, target, details FROM audit_log WHERE action = 'sandbox.start'");
    expect(rows).toEqual([{ actor: "user:ops@acme.test", target: sessionId, details: { sandboxId: h.sandboxId } }]);
    expect(await view.readFile(f.teamId, sessionId, "kept.txt")).toMatchObject({ content: "still here" });
  });

  it("an invalid agent policy is shown, and start refuses it with 422; an archived session cannot start", async () => {
    const store = new SandboxStore(f.pool);
    const view = new SessionSandboxes({ db: f.pool, store, driver: () => env.driver({ store }), resolvePolicy: sessionPolicyResolver(f.pool, noSecrets) });
    // Saving such a policy is refused now (422); an agent version written before that check
    // still can hold one.
    const bad = { egress: { allow: ["https://example.com/x"] } };
    await expect(f.tenancy.createAgent(f.teamId, { name: "bad-policy", model: "demo", sandboxPolicy: bad })).rejects.toMatchObject({ status: 422 });
    const agent = await f.tenancy.createAgent(f.teamId, { name: "bad-policy", model: "demo" });
    await f.pool.query("UPDATE agent_versions SET sandbox_policy = $2 WHERE agent_id = $1", [agent.id, JSON.stringify(bad)]);
    const sessionId = (await f.tenancy.createSession(f.teamId, { agentId: agent.id })).id;
    const v = await view.describe(f.teamId, sessionId);
    expect(v.policy).toBeNull();
    expect(v.policyError).toMatch(/is a URL; give the host name only \(e\.g\. example\.com\)/);
    await expect(view.start(f.teamId, sessionId)).rejects.toMatchObject({ status: 422, code: "validation_failed" });

    const archived = await f.newSession();
    await f.pool.query("UPDATE sessions SET status = 'archived' WHERE id = $1", [archived]);
    await expect(view.start(f.teamId, archived)).rejects.toMatchObject({ status: 409, code: "session_archived" });
  });
});
