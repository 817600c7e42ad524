import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { guardPoolErrors } from "./pool.js";
import { PrismaClient } from "../generated/prisma/client.js";

export type { PrismaClient };

/**
 * Prisma on its own small pool: its pg adapter needs pg's default type parsing, which the
 * engine's pool changes for int8 (see pool.ts). We create the pool so it has an 'error'
 * listener: an idle connection killed by a database restart must not crash the process.
 */
export function createPrisma(connectionString: string, opts: { max?: number } = {}): PrismaClient {
  const pool = new pg.Pool({ connectionString, max: opts.max ?? 4, application_name: "keel-prisma", connectionTimeoutMillis: 5_000, keepAlive: true });
  guardPoolErrors(pool);
  return new PrismaClient({ adapter: new PrismaPg(pool) });
}
