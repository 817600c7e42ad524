// Generates the Prisma client into core/src/generated/prisma (gitignored).
// Prisma's CLI downloads its native schema engine at start-up even for `generate`, which only
// needs the WASM compiler it ships; pointing PRISMA_SCHEMA_ENGINE_BINARY at an existing file
// skips that download (no network here or in air-gapped installs). Skips when up to date.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const schema = readFileSync(path.join(root, "prisma/schema.prisma"));
const prismaPkg = JSON.parse(readFileSync(path.join(root, "node_modules/prisma/package.json"), "utf8"));
const stamp = createHash("sha256").update(schema).update(prismaPkg.version).digest("hex");
const out = path.join(root, "core/src/generated/prisma");
const stampFile = path.join(out, ".keel-stamp");
if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) process.exit(0);

const dummy = path.join(root, "package.json");
execFileSync(process.execPath, [path.join(root, "node_modules/prisma/build/index.js"), "generate"], {
  cwd: root,
  stdio: "inherit",
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? dummy,
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
  },
});
writeFileSync(stampFile, stamp);
