// Grep-level checks of the rules that keep one contract per boundary (issue 15). One `it` per
// rule, each reading the sources as text: a rule that lives only in a README is a wish.
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");

/** Source files under `dirs` (relative to the repo), skipping generated code, builds and dependencies. */
function sources(dirs: string[], exts = [".ts", ".tsx"]): string[] {
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
    readFileSync(f, "utf8").split("\n").forEach((line, i) => {
      if (/^\s*(\/\/|\*|\/\*)/.test(line)) return;
      if (re.test(line)) hits.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  return hits;
}

const UI = ["server/app", "server/src/ui", "desktop/src/renderer", "desktop/src/shared"];

describe("contract checks", () => {
  it("no any payload parsing in UI code: events are read through @keel/core/view/session", () => {
    const ui = sources(UI);
    expect(ui.length).toBeGreaterThan(20); // the walk found the UI (a wrong path would pass vacuously)
    // An explicit `any` in UI code (a payload, a parsed body, a generic argument).
    // server/src/ui/api.ts parses REST answers, not events; issue 15's typed client replaces it.
    // Payloads reach the UIs typed `unknown` (LogEvent, KeelEvent) and only the contract narrows them.
    const allowed = new Set(["server/src/ui/api.ts:35: let data: any;"]);
    expect(grep(ui, /(:\s*any\b|\bas any\b|<any>|\bany\[\]|<any,|, any>)/).filter((h) => !allowed.has(h))).toEqual([]);
    // One contract for the shapes: the event-type list and the delta shape are not declared again.
    const declared = grep([...ui, ...sources(["desktop/src/shared", "server/src", "core/src/agent"])], /(EVENT_TYPES\s*=|type (Delta|KeelDelta|DeltaMessage)\s*=\s*\{)/);
    expect(declared).toEqual([]);
  });

  it("event writers are typed by the contract: no payloadText built from JSON.stringify at a call site", () => {
    const writers = sources(["core/src", "server/src", "server/app", "worker"]);
    expect(grep(writers, /payloadText:\s*JSON\.stringify/)).toEqual([]);
  });
});
