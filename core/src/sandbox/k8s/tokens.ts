// Runtime tokens of Kubernetes sandboxes: derived, never stored.
//
// A template's pods (its warm pool's too) share a start token, which the pod reads from the
// Secret `keel-runtime-<template>` (names.ts): it opens only POST /token on the runtime, once
// (sandbox/src/server.ts). On first contact a worker hands the pod its session's own token
// through that call; from then on only that token opens the pod. Both are HMACs under a key
// derived from KEEL_SECRETS_KEY, so every worker computes the same tokens with nothing written
// anywhere: no token in a pod spec, a claim or the database, and the platform ServiceAccount
// still reads no Secret. A session token opens one sandbox (it names the claim's uid), and a
// start token only pods of one team's template that no session holds yet (which the
// NetworkPolicy keeps out of reach of every pod but the workers).
import { createHmac, hkdfSync } from "node:crypto";

export class RuntimeTokens {
  private readonly key: Buffer;

  /** `secret`: KEEL_SECRETS_KEY's 32 bytes. */
  constructor(secret: Buffer) {
    if (secret.length < 32) throw new Error("the runtime token key needs 32 bytes (KEEL_SECRETS_KEY)");
    this.key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "keel kubernetes sandbox runtime tokens", 32));
  }

  /** The start token of a team template's pods. */
  start(namespace: string, template: string): string {
    return this.mac(`start\0${namespace}\0${template}`);
  }

  /** The working token of the sandbox of one claim (its uid: a new claim, a new token). */
  session(namespace: string, claimUid: string): string {
    return this.mac(`session\0${namespace}\0${claimUid}`);
  }

  private mac(input: string): string {
    return createHmac("sha256", this.key).update(input).digest("base64url");
  }
}
