// Small zod building blocks for environment variables, and the one way a process reports a bad
// environment. Processes pass `process.env` in; core never reads it.
import { z } from "zod";

export type Env = Record<string, string | undefined>;

/** Unset and empty are the same: an orchestrator often renders an unset value as "". */
export const unsetIfEmpty = (v: unknown) => (v === "" ? undefined : v);

export const optional = <T extends z.ZodType>(t: T) => z.preprocess(unsetIfEmpty, t.optional());

/** "1"/"true" are true, anything else false; unset or empty takes the default. */
export const bool = (def: boolean) => z.preprocess((v) => (v === undefined || v === "" ? def : v === "1" || v === "true"), z.boolean());

/** A whole number with a floor (milliseconds, counts, megabytes). */
export const int = (def: number, min = 1) => z.coerce.number().int().min(min).default(def);

export const port = (def: number) => z.coerce.number().int().min(1).max(65535).default(def);

/** "a, b,,c" → ["a","b","c"]; unset or blank → undefined. */
export const commaList = <T extends z.ZodType<string[]>>(t: T) =>
  z.preprocess(
    (v) =>
      typeof v === "string" && v.trim() !== ""
        ? v
            .split(",")
            .map((e) => e.trim())
            .filter(Boolean)
        : undefined,
    t.optional(),
  );

export type EnvCheck<T> = { ok: true; env: T } | { ok: false; message: string };

/**
 * Parses `env` with `schema`. On failure the message names every variable to fix, one per line,
 * so the operator fixes them all in one go rather than one restart per mistake.
 */
export function checkEnv<T>(schema: z.ZodType<T>, env: Env, processName: string): EnvCheck<T> {
  const r = schema.safeParse(env);
  if (r.success) return { ok: true, env: r.data };
  const lines = r.error.issues.map((i) => `  ${i.path.join(".") || "(environment)"}: ${i.message}`);
  return { ok: false, message: `keel ${processName}: invalid environment\n${lines.join("\n")}\nSee README.md "Configuration".` };
}
