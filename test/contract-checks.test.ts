// Grep-level checks of rules a reviewer would otherwise have to remember: they read the sources
// (not tests, not generated code) and fail the build when a rule is broken. One `it` per rule:
// a rule that lives only in a README is a wish.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { WorkerEnvSchema } from "@keel/worker/env";
import { MigrateEnvSchema, UpEnvSchema, WebCliEnvSchema } from "@keel/cli/env";

const root = path.resolve(import.meta.dirname, "..");
const SKIP_DIRS = new Set(["node_modules", ".next", "generated", "test", "dist", "out"]);
const SOURCE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;

/** Source files under `dirs` (relative to the repo root), tests and generated code left out. */
function sources(...dirs: string[]): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(p);
      } else if (SOURCE.test(e.name) && !/\.(test|spec)\.[^.]+$/.test(e.name) && !e.name.endsWith(".d.ts")) {
        out.push({ file: path.relative(root, p), text: readFileSync(p, "utf8") });
      }
    }
  };
  for (const d of dirs) walk(path.join(root, d));
  return out;
}

/**
 * Statements that set runs.status: `UPDATE runs … SET …status = …` (SQL, any case and spacing,
 * with or without quotes or an alias) and `INSERT INTO runs (…status…)`, plus any Prisma write
 * to the Run model (nothing should write runs through Prisma).
 */
function statusWrites(text: string): string[] {
  const hits: string[] = [];
  for (const m of text.matchAll(/\bUPDATE\s+"?runs"?(?:\s+(?:AS\s+)?\w+)?\s+SET\b([\s\S]*?)(?=\bWHERE\b|\bFROM\b|\bRETURNING\b|`|"\s*[,)]|$)/gi)) {
    if (/(^|[\s,.])"?status"?\s*=/i.test(m[1]!)) hits.push(m[0].replace(/\s+/g, " ").slice(0, 80));
  }
  for (const m of text.matchAll(/\bINSERT\s+INTO\s+"?runs"?\s*\(([^)]*)\)/gi)) {
    if (/\bstatus\b/i.test(m[1]!)) hits.push(m[0].replace(/\s+/g, " ").slice(0, 80));
  }
  for (const m of text.matchAll(/\.run\.(update|updateMany|upsert|create|createMany)\s*\(/g)) hits.push(m[0]);
  return hits;
}

/** Source files under `dirs` (relative to the repo), skipping generated code, builds and dependencies. */
function sourceFiles(dirs: string[], exts = [".ts", ".tsx"]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (["node_modules", ".next", "out", "dist", "generated"].includes(name)) continue;
      const p = path.join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (exts.some((x) => name.endsWith(x)) && !name.endsWith(".d.ts")) out.push(p);
    }
  };
  for (const d of dirs) walk(path.join(root, d));
  return out;
}

/** Lines matching `re`, as "file:line: text", comments left out. */
function grep(files: string[], re: RegExp): string[] {
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(f, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
        if (re.test(line)) hits.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
  }
  return hits;
}

const UI = ["server/app", "server/src/ui", "desktop/src/renderer", "desktop/src/shared"];

describe("contract checks", () => {
  it("one writer of runs.status", () => {
    // The scanner itself: it must see the forms we write, and not the ones that only read status.
    expect(statusWrites("UPDATE runs SET status = 'queued' WHERE id = $1")).toHaveLength(1);
    expect(statusWrites(`update "runs" r\n set lease_owner = NULL,\n   "status" = $2 where r.id = $1`)).toHaveLength(1);
    expect(statusWrites("INSERT INTO runs (team_id, session_id, status) VALUES ($1, $2, 'queued')")).toHaveLength(1);
    expect(statusWrites("await tx.run.updateMany({ data: { status } })")).toHaveLength(1);
    expect(statusWrites("UPDATE runs SET cancel_requested = true WHERE id = $1 AND status = 'running'")).toEqual([]);
    expect(statusWrites("UPDATE runs SET lease_expires_at = now() FROM unnest($3::uuid[]) AS a(id) WHERE runs.status = 'running'")).toEqual([]);

    const allowed = "core/src/engine/lifecycle.ts";
    const files = sources("core", "server", "worker");
    expect(files.map((f) => f.file)).toContain(allowed);
    const offenders = files.filter((f) => f.file !== allowed).flatMap((f) => statusWrites(f.text).map((s) => `${f.file}: ${s}`));
    expect(offenders, "runs.status is written only by core/src/engine/lifecycle.ts (one function per edge)").toEqual([]);
  });

  it("audit rows are written by core's services, in the change's transaction: no route or app writes one", () => {
    // The routes used to call audit() after the service had committed: a process dying in between
    // lost the record, and a failing insert answered 500 for a change that had happened.
    const calls = (text: string) => [...text.matchAll(/(?<![\w.])audit\s*\(|\bINSERT\s+INTO\s+"?audit_log\b/gi)].map((m) => m[0]);
    expect(calls("await audit(ctx.pool, principal, 'x', id)")).toHaveLength(1);
    expect(calls('INSERT INTO "audit_log" (team_id) VALUES ($1)')).toHaveLength(1);
    expect(calls("await listAudit(ctx.pool, principal, query)")).toEqual([]);
    const apps = sources("server", "worker/src", "cli/src", "desktop/src");
    expect(apps.map((f) => f.file)).toContain("server/app/api/v1/agents/route.ts"); // the walk found the routes
    const offenders = apps.flatMap((f) => calls(f.text).map((c) => `${f.file}: ${c}`));
    expect(offenders, "audit rows are written by the core service that makes the change (core/src/audit.ts `audit`/`audited`)").toEqual([]);
    // In core, only audit.ts inserts into audit_log.
    const core = sources("core/src").filter((f) => f.file !== "core/src/audit.ts");
    expect(core.flatMap((f) => [...f.text.matchAll(/\bINSERT\s+INTO\s+"?audit_log\b/gi)].map(() => f.file))).toEqual([]);
  });

  it("the agent loop writes only through the step context the engine hands it", () => {
    const agent = sources("core/src/agent");
    expect(agent.map((f) => f.file)).toContain("core/src/agent/loop.ts");
    // From the engine, agent/ sees only the step contract (StepContext, ClaimedRun, events, step errors).
    const engineImports = agent.flatMap((f) => [...f.text.matchAll(/from\s+["']\.\.\/engine\/([^"']+)["']/g)].map((m) => `${f.file}: ${m[1]}`));
    expect(engineImports.filter((i) => !i.endsWith(": types.js"))).toEqual([]);
    // …and no SQL of its own on the run's state: the log, the ledger and the run rows.
    const writes = agent.flatMap((f) =>
      [...f.text.matchAll(/\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(runs|session_events|tool_calls)\b/gi)].map((m) => `${f.file}: ${m[0]}`),
    );
    expect(writes).toEqual([]);
  });

  it("no any payload parsing in UI code: events are read through @keel/core/view/session", () => {
    const ui = sourceFiles(UI);
    expect(ui.length).toBeGreaterThan(20); // the walk found the UI (a wrong path would pass vacuously)
    // An explicit `any` in UI code (a payload, a parsed body, a generic argument).
    // REST answers come typed from the API client; payloads reach the UIs typed `unknown`
    // (LogEvent, KeelEvent) and only the contract narrows them.
    expect(grep(ui, /(:\s*any\b|\bas any\b|<any>|\bany\[\]|<any,|, any>)/)).toEqual([]);
    // One contract for the shapes: the event-type list and the delta shape are not declared again.
    const declared = grep(
      [...ui, ...sourceFiles(["desktop/src/shared", "server/src", "core/src/agent"])],
      /(EVENT_TYPES\s*=|type (Delta|KeelDelta|DeltaMessage)\s*=\s*\{)/,
    );
    expect(declared).toEqual([]);
  });

  it("run semantics are core's (issue 15 part 3): the web has no LISTEN and no run-status wait of its own; the agent loop and the web read payloads through the contract", () => {
    const web = sourceFiles(["server/src", "server/app"]);
    expect(web.length).toBeGreaterThan(20);
    // Deltas come from core's DeltaFeed, run outcomes from RunOutcomes, posting by model name from AgentChat.
    expect(grep(web, /\b(PgListener|STREAM_CHANNEL|deltaNotificationSchema|TERMINAL_RUN_STATUSES)\b/)).toEqual([]);
    // A payload is parsed with the contract (parseEventText and friends), never cast from its JSON text.
    expect(grep([...web, ...sourceFiles(["core/src/agent"])], /\beventPayload\b|JSON\.parse\([^)]*payloadText/)).toEqual([]);
  });

  it("event writers are typed by the contract: no payloadText built from JSON.stringify at a call site", () => {
    const writers = sourceFiles(["core/src", "server/src", "server/app", "worker"]);
    expect(grep(writers, /payloadText:\s*JSON\.stringify/)).toEqual([]);
  });
});

/** Tracked and new (not ignored) files of the repository. */
function repoFiles(): string[] {
  return execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" })
    .split("\n")
    .filter((f) => f && !f.includes("node_modules/"));
}

describe("configuration (issue 15 part 4)", () => {
  // `process.env.X = …`, `??=`, `Object.assign(process.env, …)`, `delete process.env.X`.
  const MUTATION = /process\.env(?:\.[A-Za-z_$][\w$]*|\[[^\]]+\])\s*(?:=(?!=)|\?\?=|\|\|=|&&=)|Object\.assign\(\s*process\.env\b|delete\s+process\.env\b/;
  // Each exception says why it is not one process configuring another.
  const ALLOWED: Record<string, string> = {
    // Next.js reads its standalone build's config only from this variable (next/dist/server/config.js);
    // the image's entry sets it for Next in its own process, as Next's generated server.js does.
    "scripts/build-image.mjs": "__NEXT_PRIVATE_STANDALONE_CONFIG",
  };

  it("no process configures another by mutating process.env (outside tests and env.ts): children get an explicit env, in-process parts a parsed object", () => {
    expect(MUTATION.test("process.env.KEEL_MIGRATIONS_DIR = dir;"), "the pattern itself").toBe(true);
    expect(MUTATION.test('Object.assign(process.env, { A: "1" })'), "the pattern itself").toBe(true);
    expect(MUTATION.test('if (process.env.A === "1") {}'), "the pattern itself").toBe(false);
    const offences: string[] = [];
    for (const file of repoFiles()) {
      if (!/\.(?:[cm]?[jt]s|tsx)$/.test(file) || /(^|\/)test\//.test(file) || /\.test\.[cm]?[jt]sx?$/.test(file) || path.basename(file) === "env.ts") continue;
      const lines = readFileSync(path.join(root, file), "utf8").split("\n");
      lines.forEach((line, i) => {
        if (!MUTATION.test(line)) return;
        if (ALLOWED[file] && line.includes(ALLOWED[file]!)) return;
        offences.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(offences).toEqual([]);
  });

  it("README.md's configuration table is true: each variable a process parses has one row, naming that process; a row naming a process lists only what it parses", () => {
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const table = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("\n## ", readme.indexOf("## Configuration") + 1));
    const rows = table
      .split("\n")
      .filter((l) => /^\| `/.test(l))
      .map((l) => {
        const [names = "", usedBy = ""] = l
          .split("|")
          .slice(1)
          .map((c) => c.trim());
        return { names: [...names.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]!), usedBy, line: l.slice(0, 80) };
      });
    expect(rows.length).toBeGreaterThan(40);
    const processes = { web: WebCliEnvSchema, worker: WorkerEnvSchema, up: UpEnvSchema, migrate: MigrateEnvSchema } as const;
    const problems: string[] = [];
    for (const [proc, schema] of Object.entries(processes)) {
      const names = Object.keys(schema.shape);
      const says = (usedBy: string) => usedBy === "all" || new RegExp(`(^|[\\s,(])${proc}([\\s,)]|$)`).test(usedBy);
      for (const name of names) {
        const found = rows.filter((r) => r.names.includes(name));
        if (found.length !== 1) problems.push(`${name}: ${found.length} rows`);
        else if (!says(found[0]!.usedBy)) problems.push(`${name}: its row does not name ${proc} (${found[0]!.usedBy})`);
      }
      for (const r of rows)
        if (says(r.usedBy)) for (const n of r.names) if (!names.includes(n)) problems.push(`${n}: row names ${proc}, which does not parse it`);
    }
    expect([...new Set(problems)]).toEqual([]);
  });
});

describe("package boundaries (issue 15 part 5)", () => {
  const workspaces = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;

  it("every package says what it exports, entry by entry: no wildcard that exposes every file", () => {
    const problems: string[] = [];
    for (const w of workspaces) {
      const pkg = JSON.parse(readFileSync(path.join(root, w, "package.json"), "utf8")) as { name: string; exports?: Record<string, string> };
      if (!pkg.exports || Object.keys(pkg.exports).length === 0) problems.push(`${pkg.name}: no exports map`);
      for (const [k, v] of Object.entries(pkg.exports ?? {})) {
        if (k.includes("*")) problems.push(`${pkg.name}: wildcard entry ${k}`);
        else if (!statSync(path.join(root, w, v), { throwIfNoEntry: false })?.isFile()) problems.push(`${pkg.name}: ${k} → ${v} does not exist`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("the boundary lint holds on the tree, and it does fire: a planted relative import across packages is reported", async () => {
    const { cruise } = await import("dependency-cruiser");
    const { createRequire } = await import("node:module");
    const config = createRequire(import.meta.url)(path.join(root, ".dependency-cruiser.cjs")) as { forbidden: unknown[]; options: Record<string, unknown> };
    const run = async (baseDir: string, dirs: string[]) => {
      const r = await cruise(dirs, { ...config.options, baseDir, validate: true, ruleSet: { forbidden: config.forbidden } } as never);
      const out = r.output as { summary: { violations: { rule: { name: string }; from: string; to: string }[] } };
      return out.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`);
    };
    expect(await run(root, workspaces)).toEqual([]);
    expect(await run(path.join(root, "test/fixtures/boundaries"), ["core", "worker"])).toEqual([
      "no-relative-import-across-packages: core/src/reach.ts → worker/src/name.ts",
    ]);
  }, 60_000);
});
