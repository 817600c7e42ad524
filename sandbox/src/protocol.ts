// The runtime's HTTP protocol as its clients see it (core's drivers): what an exec answers.
// A type-only entry point (`@keel/sandbox/protocol`), so a client never loads the server.
export type { ExecResult } from "./ledger.js";
export type { ExecRequest, Limits } from "./exec.js";
