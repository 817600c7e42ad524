// Entry point of the sandbox runtime (bundled to one file: `npm run build -w @keel/sandbox`).
//
//   node runtime.mjs --listen-fd 6 --state-fd 7 --workspace /workspace --config-stdin  (local driver)
//   node runtime.mjs --socket PATH --workspace DIR [--state-dir DIR] --config-stdin
//   node runtime.mjs --port 8080 --workspace /workspace          (KEEL_RUNTIME_START_TOKEN, or KEEL_RUNTIME_TOKEN)
//
// --listen-fd: a listening unix socket made by the host (the sandbox has no path to it);
// --state-fd: the directory for the exec ledger and fences, also only as an fd. Both stay out of
// the commands' reach: the fds are not inherited by commands (closed in their shell), and this
// process runs non-dumpable (bwrap.ts), so /proc/<pid>/fd is closed to them.
//
// --config-stdin reads one JSON object {token, env, limits, egress?} from stdin (the local driver): the
// token and the team's secrets then never appear in a command line or in this process's
// environ. Without it (Kubernetes), KEEL_RUNTIME_START_TOKEN (the template's Secret) only lets the
// worker hand the pod its session's token (server.ts), and the commands' environment is this
// process's own minus KEEL_* variables.
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { proxyEnv, startEgressForwarder, type EgressConfig } from "./egress-forward.js";
import { createRuntimeServer, type RuntimeConfig } from "./server.js";

const { values: args } = parseArgs({
  options: {
    socket: { type: "string" },
    port: { type: "string" },
    host: { type: "string", default: "0.0.0.0" },
    workspace: { type: "string", default: "/workspace" },
    "state-dir": { type: "string" },
    "listen-fd": { type: "string" },
    "state-fd": { type: "string" },
    "config-stdin": { type: "boolean", default: false },
  },
});

function fail(message: string): never {
  process.stderr.write(`keel-sandbox-runtime: ${message}\n`);
  process.exit(2);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString("utf8");
}

function fdArg(name: "listen-fd" | "state-fd"): number | undefined {
  const v = args[name];
  if (v === undefined) return undefined;
  if (!/^[3-9]$/.test(v)) fail(`--${name} must be a single digit from 3 to 9 (commands' shells close it)`);
  return Number(v);
}

/**
 * Anything inherited without CLOEXEC other than our two fds (an fd the host leaked, bwrap's
 * --info-fd): closed, so no command inherits it. Node opens its own fds with CLOEXEC.
 */
function closeInheritedFds(keep: number[]): void {
  for (const name of readdirSync("/proc/self/fd")) {
    const fd = Number(name);
    if (fd <= 2 || keep.includes(fd)) continue;
    let info: string;
    try {
      info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    } catch {
      continue; // the directory listing's own fd, gone already
    }
    const flags = /^flags:\s+([0-7]+)/m.exec(info)?.[1];
    // 02000000 is O_CLOEXEC.
    if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) closeSync(fd);
  }
}

const listenFd = fdArg("listen-fd");
const stateFd = fdArg("state-fd");
closeInheritedFds([listenFd, stateFd].filter((f): f is number => f !== undefined));
// The state dir again, with CLOEXEC (Node's default), and the inherited fd closed: reached as
// /proc/self/fd/N, a path only this process can follow.
const stateDirFd = stateFd === undefined ? undefined : openSync(`/proc/self/fd/${stateFd}`, "r");
if (stateFd !== undefined) closeSync(stateFd);

async function loadConfig(): Promise<RuntimeConfig & { egress?: EgressConfig }> {
  const workspace = path.resolve(args.workspace!);
  const stateDir = stateDirFd !== undefined ? `/proc/self/fd/${stateDirFd}` : args["state-dir"] ? path.resolve(args["state-dir"]) : undefined;
  if (args["config-stdin"]) {
    const c = JSON.parse(await readStdin()) as Partial<RuntimeConfig> & { egress?: EgressConfig };
    if (!c.token || c.token.length < 16) fail("config on stdin needs a token of at least 16 characters");
    return {
      token: c.token,
      workspace,
      stateDir,
      env: c.env ?? {},
      limits: c.limits ?? {},
      ...(listenFd !== undefined ? { privateFds: [listenFd] } : {}),
      ...(c.egress ? { egress: c.egress } : {}),
    };
  }
  // Kubernetes: the template's start token (a Secret), which only hands the pod over to a session
  // (server.ts). KEEL_RUNTIME_TOKEN, a working token from the start, is what pods of earlier
  // releases were given.
  const token = process.env.KEEL_RUNTIME_TOKEN;
  const startToken = process.env.KEEL_RUNTIME_START_TOKEN;
  if ((!token || token.length < 16) && (!startToken || startToken.length < 16)) {
    fail("set KEEL_RUNTIME_START_TOKEN or KEEL_RUNTIME_TOKEN (at least 16 characters), or pass --config-stdin");
  }
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith("KEEL_") && e[1] !== undefined));
  const limits = process.env.KEEL_RUNTIME_LIMITS ? JSON.parse(process.env.KEEL_RUNTIME_LIMITS) : {};
  return { ...(token ? { token } : {}), ...(startToken ? { startToken } : {}), workspace, stateDir, env, limits };
}

const config = await loadConfig();
mkdirSync(config.workspace, { recursive: true });
if (config.egress) {
  // Before the runtime answers: a sandbox whose egress path cannot start must fail to start.
  await startEgressForwarder(config.egress).catch((err: Error) =>
    fail(`cannot start the egress forwarder on 127.0.0.1:${config.egress!.port}: ${err.message}`),
  );
  // Last, so neither a secret nor the policy's env can point commands elsewhere.
  config.env = { ...config.env, ...proxyEnv(config.egress.port) };
}
const server = createRuntimeServer(config);
server.on("error", (err) => fail(`cannot listen: ${err.message}`));
if (listenFd !== undefined) {
  server.listen({ fd: listenFd }, () => process.stdout.write(`listening on fd ${listenFd}\n`));
} else if (args.socket) {
  // A socket left by a killed predecessor would make listen fail with EADDRINUSE.
  rmSync(args.socket, { force: true });
  // sun_path holds 107 bytes: bind a long path relative to its directory instead.
  let socket = path.resolve(args.socket);
  if (Buffer.byteLength(socket) >= 100) {
    process.chdir(path.dirname(socket));
    socket = `./${path.basename(socket)}`;
  }
  server.listen(socket, () => {
    chmodSync(socket, 0o600);
    process.stdout.write(`listening ${args.socket}\n`);
  });
} else if (args.port) {
  server.listen(Number(args.port), args.host, () => process.stdout.write(`listening ${args.host}:${args.port}\n`));
} else {
  fail("give --listen-fd N, --socket PATH or --port N");
}
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => server.close(() => process.exit(0)));
