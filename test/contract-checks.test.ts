// Grep-level checks of rules that live across packages (issue 15). Each `it` says which rule.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { WorkerEnvSchema } from "../worker/src/env.js";
import { MigrateEnvSchema, UpEnvSchema, WebCliEnvSchema } from "../cli/src/env.js";

const root = path.resolve(import.meta.dirname, "..");

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
    expect(MUTATION.test('process.env.KEEL_MIGRATIONS_DIR = dir;'), "the pattern itself").toBe(true);
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
    const rows = table.split("\n").filter((l) => /^\| `/.test(l)).map((l) => {
      const [names = "", usedBy = ""] = l.split("|").slice(1).map((c) => c.trim());
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
      for (const r of rows) if (says(r.usedBy)) for (const n of r.names) if (!names.includes(n)) problems.push(`${n}: row names ${proc}, which does not parse it`);
    }
    expect([...new Set(problems)]).toEqual([]);
  });
});

