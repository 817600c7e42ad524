// A stand-in worker process for the continuity test: acquires a session's sandbox through its
// own driver, writes a file, starts a command that keeps running, reports over IPC, then idles
// until the test SIGKILLs it.
import { LocalSandboxDriver } from "../../src/sandbox/local-driver.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";

const [baseDir, runtimeScript, teamId, sessionId] = process.argv.slice(2) as [string, string, string, string];
const driver = new LocalSandboxDriver({ baseDir, runtimeScript });
const h = await driver.acquire(sessionId, teamId, parseSandboxPolicy({}));
await driver.writeFile(h, "continuity.txt", "written by worker 1");
// Still running when this worker dies: the sandbox must not die with it.
void driver.exec(h, { command: "sleep 2; echo finished > background.txt", idempotencyKey: "bg-1", timeoutMs: 30_000 }).catch(() => {});
await new Promise((r) => setTimeout(r, 100));
process.send!({ sandboxId: h.sandboxId });
setInterval(() => {}, 60_000);
