// Size-capped log files for the processes a local sandbox runs on the host (the runtime's
// runtime.log, the egress proxy's egress.log): a sandbox can make them write (one line per refused
// connection, in a loop), and they sit on the disk PostgreSQL writes to. Before a start, a file
// past maxBytes is renamed to <file>.1 (replacing the previous one); a running writer (the proxy,
// as the sandbox's uid, cannot rename in root's sandbox dir) truncates it instead and says so.
// Either way at most 2 × maxBytes per file.
// Node built-ins only: this also runs in the egress proxy bundle.
import { appendFileSync, statSync, truncateSync } from "node:fs";
import { rename, stat } from "node:fs/promises";

export const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;

/** Rotates `file` when it is over maxBytes (before a process is started on it). */
export async function rotateLog(file: string, maxBytes: number): Promise<void> {
  const size = await stat(file).then(
    (s) => s.size,
    () => 0,
  );
  if (size > maxBytes) await rename(file, `${file}.1`);
}

/** A line writer that truncates past maxBytes; the size is counted, not stat'ed, per line. */
export function cappedLog(file: string, maxBytes: number): (line: string) => void {
  let size = (() => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  })();
  return (line) => {
    const bytes = Buffer.byteLength(line);
    if (size + bytes > maxBytes && size > 0) {
      try {
        truncateSync(file, 0);
      } catch {
        /* gone: append makes a new one */
      }
      const note = `${JSON.stringify({ time: new Date().toISOString(), msg: "log truncated", maxBytes })}\n`;
      appendFileSync(file, note, { mode: 0o600 });
      size = Buffer.byteLength(note);
    }
    appendFileSync(file, line, { mode: 0o600 });
    size += bytes;
  };
}
