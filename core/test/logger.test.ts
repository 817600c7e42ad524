import { Writable } from "node:stream";
import { expect, test } from "vitest";
import { createLogger } from "../src/logger.js";
import { toErrorBody, NotFoundError } from "../src/errors.js";

test("secrets never reach a log line: redacted by key name", () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ destination: sink as never });
  log.info(
    {
      password: "hunter2",
      apiKey: "sk-live-1",
      headers: { authorization: "Bearer t0k" },
      cfg: { databaseUrl: "postgresql://u:p@h/db", token: "abc" },
      runId: "r1",
    },
    "run claimed",
  );
  const out = lines.join("");
  for (const secret of ["hunter2", "sk-live-1", "t0k", "u:p@h", "abc"]) expect(out).not.toContain(secret);
  expect(out).toContain('"runId":"r1"');
  expect(out).toContain('"msg":"run claimed"');
});

test("errors map to JSON bodies: known keep code and status, unknown become a generic 500", () => {
  expect(toErrorBody(new NotFoundError("Session", "s1"))).toEqual({
    status: 404,
    known: true,
    body: { error: { code: "not_found", message: "Session not found", details: { sessionId: "s1" } } },
  });
  const unknown = toErrorBody(new Error("db password is hunter2"));
  expect(unknown).toEqual({ status: 500, known: false, body: { error: { code: "internal", message: "internal error", details: {} } } });
});
