// `keel teams` and `keel platform-admins` as an operator runs them: real processes, against
// DATABASE_URL (break-glass) and against the real built API with a platform key; bad input exits
// 1 with the error's code (2 for usage), and nothing is changed by a refused command.
import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Accounts, createPool, type Pool } from "@keel/core";
import { createTestDatabase } from "@keel/test/db";
import { ADMIN, startServer, type RunningServer } from "@keel/server/testing/harness";

const keel = path.resolve(import.meta.dirname, "../bin/keel.mjs");

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  // Only the variables under test: the developer's own DATABASE_URL or API key must not leak in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !["DATABASE_URL", "KEEL_API_URL", "KEEL_API_KEY"].includes(k)));
  const child = spawn(process.execPath, [keel, ...args], { env: { ...base, ...env } as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out, err })));
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let pool: Pool;
beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool(db.url, { max: 2 });
  await new Accounts({ pool }).bootstrapAdmin({ email: "first@example.com", password: "first long password", teamSlug: "main", teamName: "Main" });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe("against DATABASE_URL (break-glass)", () => {
  test("create, list, rename, suspend, resume, invite, delete; duplicate slug, invalid slug, wrong confirm and the last platform admin refused", async () => {
    const env = { DATABASE_URL: db.url };
    expect(await run(["teams", "create", "beta", "--name", "Beta Team"], env)).toMatchObject({ code: 0, out: expect.stringMatching(/^created beta /) });
    const dup = await run(["teams", "create", "beta"], env);
    expect(dup).toMatchObject({ code: 1, err: expect.stringContaining("(team_exists)") });
    const bad = await run(["teams", "rename", "beta", "--slug", "Not Valid"], env);
    expect(bad).toMatchObject({ code: 1, err: expect.stringContaining("(validation_failed)") });
    expect((await run(["teams", "rename", "beta", "--slug", "gamma"], env)).code).toBe(0);
    expect((await run(["teams", "suspend", "gamma", "--reason", "audit in progress"], env)).code).toBe(0);
    const list = await run(["teams", "list", "--json"], env);
    expect(JSON.parse(list.out)).toMatchObject([
      { slug: "main", suspendedAt: null },
      { slug: "gamma", name: "Beta Team", suspendedReason: "audit in progress" },
    ]);
    expect((await run(["teams", "resume", "gamma"], env)).code).toBe(0);
    const invite = await run(["teams", "invite", "gamma", "lead@example.com"], env);
    expect(invite).toMatchObject({ code: 0, out: expect.stringMatching(/invited lead@example.com as admin[\s\S]*\/invite#ki_/) });
    expect((await pool.query("SELECT role FROM invitations WHERE email = 'lead@example.com'")).rows).toEqual([{ role: "admin" }]);

    expect(await run(["teams", "delete", "gamma"], env)).toMatchObject({ code: 2, err: expect.stringContaining("--confirm") });
    expect(await run(["teams", "delete", "gamma", "--confirm", "beta"], env)).toMatchObject({ code: 1, err: expect.stringContaining("slug") });
    expect((await pool.query("SELECT 1 FROM teams WHERE slug = 'gamma'")).rowCount).toBe(1);
    expect((await run(["teams", "delete", "gamma", "--confirm", "gamma"], env)).code).toBe(0);
    expect((await pool.query("SELECT 1 FROM teams WHERE slug = 'gamma'")).rowCount).toBe(0);
    expect(await run(["teams", "resume", "gamma"], env)).toMatchObject({ code: 1, err: expect.stringContaining("(not_found)") });

    expect(await run(["platform-admins", "revoke", "first@example.com"], env)).toMatchObject({
      code: 1,
      err: expect.stringContaining("(last_platform_admin)"),
    });
    expect((await run(["platform-admins", "list"], env)).out).toBe("first@example.com\n");
    expect(await run(["teams", "list"], {})).toMatchObject({ code: 2, err: expect.stringContaining("DATABASE_URL") });
  }, 240_000);
});

describe("against the API with a platform key", () => {
  let server: RunningServer;
  let apiDb: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    apiDb = await createTestDatabase();
    server = await startServer(apiDb.url);
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
    await apiDb?.drop();
  });

  test("the same verbs over HTTP; a team admin's key gets 403 platform_admin_required", async () => {
    const login = await fetch(`${server.url}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(ADMIN),
    });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const { csrfToken } = (await login.json()) as { csrfToken: string };
    const key = async (platform: boolean) =>
      (
        (await (
          await fetch(`${server.url}/api/v1/api-keys`, {
            method: "POST",
            headers: { "content-type": "application/json", cookie, "x-csrf-token": csrfToken },
            body: JSON.stringify({ name: `cli-${platform}`, role: "admin", platform }),
          })
        ).json()) as { key: string }
      ).key;
    const env = { KEEL_API_URL: server.url, KEEL_API_KEY: await key(true) };
    expect((await run(["teams", "create", "ops"], env)).code).toBe(0);
    expect(await run(["teams", "create", "ops"], env)).toMatchObject({ code: 1, err: expect.stringContaining("(team_exists)") });
    expect(await run(["teams", "rename", "ops", "--slug=-ops"], env)).toMatchObject({ code: 1, err: expect.stringContaining("(validation_failed)") });
    expect((await run(["teams", "invite", "ops", "lead@example.com"], env)).out).toContain(`link: ${server.url}/invite#ki_`);
    expect((await run(["teams", "suspend", "ops", "--reason", "paused"], env)).code).toBe(0);
    const list = await run(["teams", "list"], env);
    expect(list.out).toMatch(/^acme\s+acme\s+1\s+active$/m);
    expect(list.out).toMatch(/^ops\s+ops\s+0\s+suspended: paused$/m);
    expect(await run(["teams", "delete", "ops", "--confirm", "ops"], env)).toMatchObject({ code: 0, out: expect.stringMatching(/^deleted ops/) });
    expect(await run(["teams", "list"], { KEEL_API_URL: server.url, KEEL_API_KEY: await key(false) })).toMatchObject({
      code: 1,
      err: expect.stringContaining("(platform_admin_required)"),
    });
  }, 240_000);
});
