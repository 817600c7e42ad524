// The database every process but the sandbox runtime talks to.
import { z } from "zod";
import { unsetIfEmpty } from "./parse.js";

const postgresUrl = z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, e.g. postgresql://keel:secret@localhost:5432/keel" });

export const databaseEnv = {
  /** Postgres connection string (required; `keel up` passes its embedded server's to its worker and web). */
  DATABASE_URL: postgresUrl,
};

/** `keel up`: unset means "start the embedded Postgres". */
export const optionalDatabaseEnv = {
  DATABASE_URL: z.preprocess(
    unsetIfEmpty,
    z.string().url({ message: "DATABASE_URL must be a postgresql:// URL, or unset for the embedded Postgres" }).optional(),
  ),
};
