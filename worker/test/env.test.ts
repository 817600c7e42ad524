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

test("KEEL_OUTBOUND_HOSTS: unset means any host; entries in the egress grammar; a URL or a bad entry is named", () => {
  const base = { DATABASE_URL: "postgres://keel@127.0.0.1:5432/keel" };
  expect(WorkerEnvSchema.parse(base).KEEL_OUTBOUND_HOSTS).toBeUndefined();
  expect(WorkerEnvSchema.parse({ ...base, KEEL_OUTBOUND_HOSTS: "" }).KEEL_OUTBOUND_HOSTS).toBeUndefined();
  expect(WorkerEnvSchema.parse({ ...base, KEEL_OUTBOUND_HOSTS: " api.openai.com, *.corp.example:443,10.0.0.0/8 " }).KEEL_OUTBOUND_HOSTS).toEqual([
    "api.openai.com",
    "*.corp.example:443",
    "10.0.0.0/8",
  ]);
  const r = WorkerEnvSchema.safeParse({ ...base, KEEL_OUTBOUND_HOSTS: "api.openai.com,https://litellm.corp/v1" });
  expect(r.success).toBe(false);
  expect(r.error!.issues[0]).toMatchObject({
    path: ["KEEL_OUTBOUND_HOSTS"],
    message: expect.stringMatching(/"https:\/\/litellm.corp\/v1" is a URL; give the host name only \(e.g. litellm.corp\)/),
  });
});

test("KEEL_OUTBOUND_INTERNAL_HOSTS: unset means no internal host; the same grammar; a bad entry is named", () => {
  const base = { DATABASE_URL: "postgres://keel@127.0.0.1:5432/keel" };
  expect(WorkerEnvSchema.parse(base).KEEL_OUTBOUND_INTERNAL_HOSTS).toBeUndefined();
  expect(WorkerEnvSchema.parse({ ...base, KEEL_OUTBOUND_INTERNAL_HOSTS: "127.0.0.1, litellm.internal:4000,10.0.0.0/8" }).KEEL_OUTBOUND_INTERNAL_HOSTS).toEqual([
    "127.0.0.1",
    "litellm.internal:4000",
    "10.0.0.0/8",
  ]);
  const r = WorkerEnvSchema.safeParse({ ...base, KEEL_OUTBOUND_INTERNAL_HOSTS: "http://127.0.0.1:8080" });
  expect(r.success).toBe(false);
  expect(r.error!.issues[0]).toMatchObject({ path: ["KEEL_OUTBOUND_INTERNAL_HOSTS"] });
});
