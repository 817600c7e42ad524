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

test("metrics and traces: the worker's metrics port and the OTLP endpoint are off unless set; bad values are named", () => {
  const base = { DATABASE_URL: "postgres://keel@127.0.0.1:5432/keel" };
  const env = WorkerEnvSchema.parse(base);
  expect([env.KEEL_WORKER_METRICS_PORT, env.OTEL_EXPORTER_OTLP_ENDPOINT, env.OTEL_SERVICE_NAME]).toEqual([undefined, undefined, undefined]);
  expect(WorkerEnvSchema.parse({ ...base, KEEL_WORKER_METRICS_PORT: "" }).KEEL_WORKER_METRICS_PORT).toBeUndefined();
  expect(WorkerEnvSchema.parse({ ...base, KEEL_WORKER_METRICS_PORT: "9464", OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel:4318" })).toMatchObject({
    KEEL_WORKER_METRICS_PORT: 9464,
    OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel:4318",
  });
  for (const [name, bad] of <[string, string][]>[
    ["KEEL_WORKER_METRICS_PORT", "abc"],
    ["KEEL_WORKER_METRICS_PORT", "70000"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "otel:4318"],
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://otel:4317"],
    ["KEEL_METRICS_TOKEN", "short"],
  ]) {
    const r = WorkerEnvSchema.safeParse({ ...base, [name]: bad });
    expect(r.success, `${name}=${bad}`).toBe(false);
    expect(r.error!.issues.map((i) => i.path[0])).toEqual([name]);
  }
});
