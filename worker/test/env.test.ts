// The worker's environment: defaults, and a bad value named with how to fix it.
import { expect, test } from "vitest";
import { WorkerEnvSchema } from "../src/env.js";

test("defaults parse; a namespace prefix Kubernetes would refuse is named with the rule", () => {
  const base = { DATABASE_URL: "postgres://keel@127.0.0.1:5432/keel" };
  expect(WorkerEnvSchema.parse(base).KEEL_SANDBOX_NAMESPACE_PREFIX).toBe("keel-team-");
  for (const bad of ["Keel-", "-team", "team_", "x".repeat(41), ""]) {
    const r = WorkerEnvSchema.safeParse({ ...base, KEEL_SANDBOX_NAMESPACE_PREFIX: bad });
    expect(r.success, bad).toBe(false);
    expect(r.error!.issues).toHaveLength(1);
    expect(r.error!.issues[0]).toMatchObject({ path: ["KEEL_SANDBOX_NAMESPACE_PREFIX"], message: expect.stringContaining("lowercase letters, digits or '-'") });
  }
});
