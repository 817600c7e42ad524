// The launcher's process groups, recorded in a file (under userData in the app) while they run, so
// the next start can stop the ones a crash or a kill -9 of the app left behind (a kubectl
// port-forward, a half-done `kind create cluster`). A group is stopped only while its leader is
// the same process that was recorded: same pid and same start time (Linux: /proc/<pid>/stat), so a
// pid the OS reused for something else is left alone. Elsewhere the command line is compared.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { groupAlive, processStartTime, signalGroupAndWait } from "./process.ts";

type Entry = { pgid: number; started: string | null; script: string };

export class ProcessGroupRecord {
  constructor(readonly file: string) {}

  read(): Entry[] {
    try {
      const v = JSON.parse(readFileSync(this.file, "utf8")) as unknown;
      return Array.isArray(v) ? (v as Entry[]).filter((e) => Number.isInteger(e?.pgid) && e.pgid > 1) : [];
    } catch {
      return [];
    }
  }

  add(pgid: number, script: string): void {
    this.write([...this.read().filter((e) => e.pgid !== pgid), { pgid, started: processStartTime(pgid), script }]);
  }

  remove(pgid: number): void {
    this.write(this.read().filter((e) => e.pgid !== pgid));
  }

  /** Stops every recorded group whose leader is still the recorded process; clears the record. */
  async stopOrphans(graceMs: number): Promise<number[]> {
    const stopped: number[] = [];
    for (const e of this.read()) {
      if (!groupAlive(e.pgid) || !sameProcess(e)) continue;
      await signalGroupAndWait(e.pgid, graceMs);
      stopped.push(e.pgid);
    }
    this.write([]);
    return stopped;
  }

  private write(entries: Entry[]) {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(entries));
    renameSync(tmp, this.file);
  }
}

function sameProcess(e: Entry): boolean {
  if (process.platform === "linux") return e.started !== null && processStartTime(e.pgid) === e.started;
  try {
    return execFileSync("ps", ["-o", "command=", "-p", String(e.pgid)], { encoding: "utf8" }).includes(e.script);
  } catch {
    return false;
  }
}
