import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";

export type { PrismaClient };

/**
 * Prisma on its own small pool: its pg adapter needs pg's default type parsing, which the
 * engine's pool changes for int8 (see pool.ts).
 */
export function createPrisma(connectionString: string, opts: { max?: number } = {}): PrismaClient {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString, max: opts.max ?? 4, application_name: "keel-prisma" }) });
}
