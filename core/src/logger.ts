import { pino, type Logger } from "pino";

export type { Logger };

/** Key names whose values never reach a log line, at any depth we log. */
export const REDACT_PATHS = [
  "password",
  "*.password",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "secret",
  "*.secret",
  "secrets",
  "*.secrets",
  "authorization",
  "*.authorization",
  "headers.authorization",
  "databaseUrl",
  "*.databaseUrl",
  "connectionString",
  "*.connectionString",
];

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino({ level: opts.level ?? "info", name: opts.name, redact: { paths: REDACT_PATHS, censor: "[redacted]" } }, opts.destination);
}

/** A logger that drops everything, for callers that do not care (tests, one-shot scripts). */
export const silentLogger: Logger = pino({ level: "silent" });
