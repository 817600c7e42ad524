import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";
import type { Pool } from "./pool.js";

export type { PrismaClient };

/** Prisma over our own pg pool: one set of connections per process, shared with the engine's SQL. */
export function createPrisma(pool: Pool): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg(pool) });
}
