import { z } from "zod";

export const loggingEnv = {
  /** pino level of the process's JSON log. */
  KEEL_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
};
