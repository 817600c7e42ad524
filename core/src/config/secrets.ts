// The team-secrets key. Web encrypts with it, the worker decrypts: both parse it the same way,
// so a key one process refuses cannot be one the other accepts (a worker used to take any string
// and crash at start-up in Secrets' constructor, exit 1 with a stack, instead of naming it).
import { z } from "zod";
import { optional } from "./parse.js";

export const secretsEnv = {
  /** 32 random bytes, base64 (`openssl rand -base64 32`). Unset: the secrets API answers 503 and no run gets team secrets. */
  KEEL_SECRETS_KEY: optional(
    z.string().refine((s) => Buffer.from(s, "base64").length === 32, "KEEL_SECRETS_KEY must be 32 bytes, base64 (openssl rand -base64 32)"),
  ),
};
