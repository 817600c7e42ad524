// Password hashing with scrypt (node:crypto; no native module to build). Parameters are stored
// with each hash so they can be raised later without breaking existing logins.
import { ValidationError } from "../errors.js";
import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";

const scrypt = (pw: string, salt: Buffer, len: number, o: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(pw, salt, len, o, (err, key) => (err ? reject(err) : resolve(key))));

// N=2^15, r=8: ~50 ms here, 32 MiB of memory per hash (OWASP's scrypt minimum is N=2^17 with
// r=8 and p=1 at 128 MiB; we trade some of that for login latency on small machines).
const PARAMS = { N: 1 << 15, r: 8, p: 1 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, { ...PARAMS, maxmem: 64 * 1024 * 1024 });
  return ["scrypt", PARAMS.N, PARAMS.r, PARAMS.p, salt.toString("base64"), key.toString("base64")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split("$");
  if (kind !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const key = await scrypt(password, Buffer.from(salt, "base64"), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 256 * 1024 * 1024 });
  return timingSafeEqual(key, expected);
}

export function normalizeEmail(e: string): string {
  const email = String(e ?? "")
    .trim()
    .toLowerCase();
  if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) throw new ValidationError("email is not valid");
  return email;
}

export function validatePassword(pw: string): void {
  if (typeof pw !== "string" || pw.length < 12 || pw.length > 1024) throw new ValidationError("password must be 12 to 1024 characters");
}
