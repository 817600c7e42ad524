// The boundary lint (`npm run lint`, run by `npm test` before any test): the package boundaries
// and import rules that used to live only in READMEs. Packages are the npm workspaces; each one
// is reached from another only by its name and an entry point its package.json "exports" lists.
const PACKAGES = "(core|worker|cli|bench|server|sandbox|desktop|test|e2e|controlplane)";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-relative-import-across-packages",
      comment: "Import another package by its name and an exported entry point (@keel/core, @keel/core/k8s, …), never by a relative path into its folder.",
      severity: "error",
      from: { path: `^${PACKAGES}/` },
      to: { dependencyTypes: ["local"], pathNot: "^$1/" },
    },
    {
      name: "no-circular",
      comment: "A cycle between modules: move what both need below them (as core/src/tools/ is for the agent loop and the sandbox tools).",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "sandbox-below-agent",
      comment: "core/src/sandbox implements tools; it never imports the agent loop (the tool interface is core/src/tools).",
      severity: "error",
      from: { path: "^core/src/sandbox/" },
      to: { path: "^core/src/agent/" },
    },
    {
      name: "tools-below-both",
      comment: "core/src/tools is below the agent loop and the sandbox tools.",
      severity: "error",
      from: { path: "^core/src/tools/" },
      to: { path: "^core/src/(agent|sandbox)/" },
    },
    {
      name: "contract-and-view-are-pure",
      comment: "The contract and view entry points load in a browser: no server module, no Node built-in.",
      severity: "error",
      from: { path: "^core/src/(contract|view)/" },
      to: { pathNot: "^core/src/(contract|view)/|^core/src/errors\\.ts$|node_modules/zod/" },
    },
    {
      name: "ui-code-loads-no-server-core",
      comment: "The desktop's renderer and the dashboard's pages reach core only through its pure entry points (contract, view).",
      severity: "error",
      from: { path: "^(desktop/src/(renderer|preload|shared)|server/app)/", pathNot: "^server/app/(api|v1)/|/route\\.ts$" },
      to: { path: "^core/src/", pathNot: "^core/src/(contract|view)/|^core/src/errors\\.ts$" },
    },
    {
      name: "desktop-main-reaches-core-by-small-entries",
      comment: "The desktop's main process loads Kubernetes (@keel/core/k8s), errors, backoff and logger from core, not the server-only index.",
      severity: "error",
      from: { path: "^desktop/src/main/" },
      to: { path: "^core/src/index\\.ts$" },
    },
    {
      name: "no-test-code-in-products",
      comment: "Shipped code never imports test support (a package's test/ folder or a testing entry point).",
      severity: "error",
      from: { path: "^(core|worker|cli|server|sandbox|desktop)/(src|app|bin)/" },
      to: { path: `^${PACKAGES}/test/|^test/` },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)(node_modules|\\.next|out|dist|\\.tmp|generated)/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    combinedDependencies: false,
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      extensions: [".ts", ".tsx", ".mts", ".js", ".mjs", ".cjs", ".json"],
    },
  },
};
