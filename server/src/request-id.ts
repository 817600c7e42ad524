/** An incoming X-Request-Id worth keeping (short, no odd characters), or null. */
export function validRequestId(v: string | null): string | null {
  return v && /^[\w.:-]{1,100}$/.test(v) ? v : null;
}
