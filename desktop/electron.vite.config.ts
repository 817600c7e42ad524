// electron-vite: three bundles from one config. `npx electron-vite build` (in desktop/) writes
// out/main/main.js, out/preload/index.cjs and out/renderer/. It needs the `electron` npm package
// only for its version (build targets) and types; the Electron binary is never downloaded here.
import { resolve } from "node:path";
import { defineConfig } from "electron-vite";
import react from "@vitejs/plugin-react";

const here = import.meta.dirname;

export default defineConfig({
  main: {
    build: {
      // Everything bundled (only node: builtins and electron stay imports): @keel/core is
      // TypeScript Electron cannot load, and a packaged app then needs no node_modules, which npm
      // workspaces hoist out of desktop/ where electron-builder would look for them.
      externalizeDeps: false,
      rolldownOptions: { input: { main: resolve(here, "src/electron/main.ts") } },
    },
  },
  preload: {
    build: {
      // A sandboxed preload cannot require() node_modules: bundle everything it imports, as CommonJS.
      externalizeDeps: false,
      rolldownOptions: {
        input: { index: resolve(here, "src/preload/index.ts") },
        output: { format: "cjs", entryFileNames: "[name].cjs" },
      },
    },
  },
  renderer: {
    root: resolve(here, "src/renderer"),
    plugins: [react()],
    build: { rolldownOptions: { input: resolve(here, "src/renderer/index.html") } },
  },
});
