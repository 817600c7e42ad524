// Runs once when the Next server starts (before the first request): the environment is parsed
// here, so a bad value stops `next start` with exit code 2 instead of failing the first request.
// Under `keel web` / `keel up` the CLI has parsed it already and this only picks that up.
export async function register(): Promise<void> {
  // Edge bundles (proxy.ts) have no process to stop; the build phase has no runtime env.
  if (process.env.NEXT_RUNTIME !== "nodejs" || process.env.NEXT_PHASE === "phase-production-build") return;
  const { requireWebEnv } = await import("./src/env");
  requireWebEnv();
}
