// A stand-in worker with an fd it inherited without CLOEXEC (as fd 251, like the pipe `keel up`
// shares with PostgreSQL): acquires a sandbox, lists the fds a command sees, prints JSON, exits.
import { LocalSandboxDriver } from "../../src/sandbox/local-driver.js";
import { parseSandboxPolicy } from "../../src/sandbox/policy.js";

const [baseDir, runtimeScript, teamId, sessionId] = process.argv.slice(2) as [string, string, string, string];
const driver = new LocalSandboxDriver({ baseDir, runtimeScript });
const h = await driver.acquire(sessionId, teamId, parseSandboxPolicy({}));
const r = await driver.exec(h, { command: 'for f in /proc/self/fd/*; do echo "${f##*/} $(readlink $f)"; done' });
process.stdout.write(`${JSON.stringify({ inside: r.stdout })}\n`);
