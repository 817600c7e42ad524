// Isolation of local (bubblewrap) sandboxes, with real processes: network, host files, other
// sandboxes, host PIDs, other teams' secrets, runaway commands, path traversal.
import net from "node:net";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useFixture } from "../fixture.js";
import { SandboxStore } from "../../src/sandbox/store.js";
import { createSandboxTools } from "../../src/sandbox/tools.js";
import type { Tool, ToolContext } from "../../src/tools/tools.js";
import { policy, useSandboxEnv } from "./helpers.js";

const f = useFixture();
const env = useSandboxEnv();
let tcp: net.Server;
let tcpPort: number;
let hostSecretDir: string;
let otherTeamId: string;

beforeAll(async () => {
  otherTeamId = (await f.tenancy.createTeam({ slug: "beta", name: "Beta" })).id;
  tcp = net.createServer((s) => s.end("hello from the host\n"));
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  tcpPort = (tcp.address() as net.AddressInfo).port;
  // Stands in for the database's data dir: world-readable, so only the mount namespace hides it.
  hostSecretDir = await mkdtemp(path.join(os.tmpdir(), "keel-host-"));
  await writeFile(path.join(hostSecretDir, "pg_secret"), "host-only-data");
  await chmod(hostSecretDir, 0o755);
  await chmod(path.join(hostSecretDir, "pg_secret"), 0o644);
});
afterAll(async () => {
  tcp?.close();
  if (hostSecretDir) await rm(hostSecretDir, { recursive: true, force: true });
});

const connectScript = (port: number) =>
  `node -e "require('net').connect(${port},'127.0.0.1').on('data',d=>{process.stdout.write('CONNECTED '+d);process.exit(0)}).on('error',e=>{console.log('REFUSED',e.code);process.exit(3)})"`;

describe("local sandbox isolation", () => {
  it("has no network by default, and no direct network even with an egress allow-list (egress.test.ts)", async () => {
    const d = env.driver({ store: new SandboxStore(f.pool) });
    const closed = await d.acquire(await f.newSession(), f.teamId, policy());
    const r = await d.exec(closed, { command: connectScript(tcpPort) });
    expect(r.stdout).toMatch(/REFUSED/);
    expect(r.exitCode).toBe(3);
    const ifaces = await d.exec(closed, { command: "cat /proc/net/dev | tail -n +3 | cut -d: -f1" });
    expect(ifaces.stdout.trim()).toBe("lo");
    // An allow-list opens a proxy (egress.test.ts), never the host network: a direct connection
    // to an allowed address still fails. The same script reaches the server from the host.
    const open = await d.acquire(await f.newSession(), f.teamId, policy({ egress: { allow: ["127.0.0.1"] } }));
    expect((await d.exec(open, { command: connectScript(tcpPort) })).stdout).toMatch(/REFUSED/);
    await new Promise<void>((resolve, reject) =>
      net
        .connect(tcpPort, "127.0.0.1")
        .once("data", () => resolve())
        .once("error", reject),
    );
  });

  it("cannot read host files, other sandboxes' workspaces or host processes", async () => {
    const d = env.driver();
    const a = await d.acquire(await f.newSession(), f.teamId, policy());
    const b = await d.acquire(await f.newSession(), f.teamId, policy());
    await d.writeFile(b, "b-private.txt", "b's data");
    const bWorkspace = path.join(env.baseDir, f.teamId, b.sessionId, "workspace");
    const r = await d.exec(a, {
      command: `cat ${hostSecretDir}/pg_secret; cat ${bWorkspace}/b-private.txt; ls ${env.baseDir}; ls /workspace/..; cat /etc/shadow; ls /root`,
    });
    expect(r.stdout).not.toMatch(/host-only-data|b's data|b-private/);
    expect(r.stderr).toMatch(/pg_secret: No such file or directory/);
    expect(r.stderr).toMatch(/b-private.txt: No such file or directory/);
    // Host PIDs: only the sandbox's own few processes are visible, none of the host's.
    const ps = await d.exec(a, { command: "for p in /proc/[0-9]*; do echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline)\"; done" });
    const procs = ps.stdout.trim().split("\n");
    expect(procs.length).toBeLessThan(8);
    expect(ps.stdout).not.toContain("vitest");
    expect(ps.stdout).not.toContain("postgres");
    const kill = await d.exec(a, { command: `kill -0 ${process.pid}` });
    expect(kill.exitCode).not.toBe(0);
    // Writable only in the workspace and /tmp.
    const ro = await d.exec(a, { command: "touch /usr/x 2>&1; touch /etc/x 2>&1; touch /tmp/ok && touch /workspace/ok && echo writable" });
    expect(ro.stdout).toMatch(/Read-only file system/);
    expect(ro.stdout).toMatch(/writable/);
  });

  it("shows a sandbox only its own team's secrets named in its policy, nothing from the host", async () => {
    process.env.KEEL_HOST_ONLY = "host-env-value";
    const d = env.driver();
    const secretsByTeam: Record<string, Record<string, string>> = {
      [f.teamId]: { API_KEY: "alpha-key", UNLISTED: "alpha-unlisted" },
      [otherTeamId]: { API_KEY: "beta-key", BETA_ONLY: "beta-only" },
    };
    const tools = createSandboxTools(d, async (teamId) => ({ policy: policy({ secrets: ["API_KEY", "BETA_ONLY"] }), secrets: secretsByTeam[teamId]! }));
    const exec = tools.find((t) => t.name === "exec")!;
    const alphaSession = await f.newSession();
    const betaSession = (await f.tenancy.createSession(otherTeamId, { agentId: (await f.tenancy.createAgent(otherTeamId, { name: "b", model: "demo" })).id }))
      .id;
    const alpha = (await exec.run({ command: "env" }, ctx(f.teamId, alphaSession))) as { stdout: string };
    const beta = (await exec.run({ command: "env" }, ctx(otherTeamId, betaSession))) as { stdout: string };
    expect(alpha.stdout).toContain("API_KEY=alpha-key");
    expect(alpha.stdout).not.toMatch(/beta|UNLISTED|host-env-value|KEEL_|TOKEN/);
    expect(beta.stdout).toContain("API_KEY=beta-key");
    expect(beta.stdout).toContain("BETA_ONLY=beta-only");
    expect(beta.stdout).not.toMatch(/alpha|host-env-value/);
    // Secrets reach the runtime on stdin: never in a command line other host users can read.
    const rec = await env.record(f.teamId, alphaSession);
    expect(await env.runtimeProcesses()).toContain(rec.pid);
    const cmdline = await readFile(`/proc/${rec.pid}/cmdline`, "utf8");
    expect(cmdline).toContain("bwrap");
    expect(cmdline).not.toContain("alpha-key");
  });

  it("fences tool calls with the run's epoch", async () => {
    const d = env.driver();
    const epochs: Record<string, number> = { "run-1": 5 };
    const tools = createSandboxTools(
      d,
      async () => ({ policy: policy(), secrets: {} }),
      (c) => epochs[c.runId],
    );
    const c = { ...ctx(f.teamId, await f.newSession()), runId: "run-1" };
    await tool(tools, "write_file").run({ path: "a.txt", content: "epoch 5" }, c);
    epochs["run-1"] = 4; // a worker that lost its claim, still running
    await expect(tool(tools, "write_file").run({ path: "a.txt", content: "stale" }, c)).rejects.toThrow(/older than 5.*lost its claim/);
    await expect(tool(tools, "exec").run({ command: "echo stale > a.txt" }, c)).rejects.toThrow(/lost its claim/);
    expect(await tool(tools, "read_file").run({ path: "a.txt" }, c)).toMatchObject({ content: "epoch 5" });
  });

  it("stops runaway commands with a clear error", async () => {
    const d = env.driver();
    const tools = createSandboxTools(d, async () => ({
      policy: policy({ resources: { cpuSeconds: 1, memoryMb: 128, maxProcesses: 40, maxFileSizeMb: 1 } }),
      secrets: {},
    }));
    const exec = tool(tools, "exec");
    const c = ctx(f.teamId, await f.newSession());
    const run = (command: string, timeoutMs = 20_000) =>
      exec.run({ command, timeoutMs }, { ...c, idempotencyKey: `${command}-${Math.random()}` }) as Promise<{
        error?: string;
        stdout: string;
        exitCode: number | null;
      }>;
    // Counted with the shell's own glob (no fork): while the bomb holds every slot a `$(ls | wc)`
    // cannot fork, and printed an empty count under load (cold CI, 2026-12-07).
    const bomb = await run("f(){ f|f& }; f; sleep 1; set -- /proc/[0-9]*; echo procs=$#", 10_000);
    expect(bomb.error).toMatch(/process limit/);
    const procs = Number(/procs=(\d+)/.exec(bomb.stdout)?.[1]);
    expect(procs).toBeLessThanOrEqual(40);
    expect((await run("tail /dev/zero")).error).toMatch(/out of memory/);
    expect((await run("while :; do :; done")).error).toMatch(/CPU time limit/);
    const big = await run("head -c 50000000 /dev/zero > big.bin; ls -l big.bin");
    expect(big.error).toMatch(/file size limit/);
    expect(big.stdout).toMatch(/ 1048576 /);
    expect((await run("sleep 30", 300)).error).toMatch(/ran longer than its timeout \(300 ms\)/);
    // The sandbox is still usable afterwards.
    expect((await run("echo alive")).stdout).toBe("alive\n");
  });

  it("refuses path traversal in file calls with a message the model can read", async () => {
    const d = env.driver();
    const tools = createSandboxTools(d, async () => ({ policy: policy(), secrets: {} }));
    const c = ctx(f.teamId, await f.newSession());
    await tool(tools, "exec").run({ command: "ln -s / rootlink" }, c);
    await expect(tool(tools, "read_file").run({ path: "../../../etc/passwd" }, c)).rejects.toThrow(/outside the workspace/);
    await expect(tool(tools, "read_file").run({ path: "/etc/passwd" }, c)).rejects.toThrow(/outside the workspace/);
    await expect(tool(tools, "read_file").run({ path: "rootlink/etc/passwd" }, c)).rejects.toThrow(/outside the workspace through a symbolic link/);
    await expect(tool(tools, "write_file").run({ path: "../escape.txt", content: "x" }, c)).rejects.toThrow(/outside the workspace/);
    await expect(tool(tools, "list_files").run({ path: ".." }, c)).rejects.toThrow(/outside the workspace/);
    await tool(tools, "write_file").run({ path: "notes/a.txt", content: "fine" }, c);
    expect(await tool(tools, "read_file").run({ path: "notes/a.txt" }, c)).toMatchObject({ content: "fine" });
  });
});

function tool(tools: Tool[], name: string): Tool {
  return tools.find((t) => t.name === name)!;
}

function ctx(teamId: string, sessionId: string): ToolContext {
  return {
    signal: new AbortController().signal,
    idempotencyKey: `key-${Math.random()}`,
    teamId,
    sessionId,
    runId: "00000000-0000-0000-0000-000000000001",
    epoch: 1n,
  };
}
