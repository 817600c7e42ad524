// Prisma CLI configuration, for `prisma migrate diff` (prisma/README.md); `keel migrate`
// applies prisma/migrations itself (with the same `_prisma_migrations` bookkeeping), so a real
// deployment may equally run `prisma migrate deploy`.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost:5432/keel" },
});
