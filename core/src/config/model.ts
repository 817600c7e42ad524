// The default model provider and which hosts the worker may call for agents' own providers and
// MCP servers (core/src/agent/outbound.ts).
import { z } from "zod";
import { parseEgressEntry } from "../sandbox/egress.js";
import { commaList, optional } from "./parse.js";

/** A comma-separated list in the sandbox egress grammar (core/src/sandbox/egress.ts); unset or empty: undefined. */
export const egressList = commaList(
  z.array(z.string()).superRefine((entries, ctx) => {
    for (const e of entries) {
      const r = parseEgressEntry(e);
      if (r instanceof Error) ctx.addIssue({ code: "custom", message: r.message.replace("egress allow-list entry", "entry") });
    }
  }),
);

export const modelEnv = {
  /** Default base URL of an OpenAI-compatible provider for agents that do not set one (e.g. a LiteLLM proxy). */
  KEEL_OPENAI_BASE_URL: optional(z.string().url()),
  /** API key sent to that provider, and only to it. */
  KEEL_OPENAI_API_KEY: optional(z.string()),
  /**
   * Hosts the worker may call for an agent's own provider.baseUrl and MCP servers, comma-separated
   * in the sandbox egress grammar (api.openai.com, *.example.com, 10.0.0.0/8, host:443). Unset: any
   * public host (internal addresses need KEEL_OUTBOUND_INTERNAL_HOSTS or an IP/CIDR entry here).
   */
  KEEL_OUTBOUND_HOSTS: egressList,
  /**
   * Internal hosts (loopback, private, link-local, CGNAT, ULA, NAT64, this host's own addresses)
   * the worker may call for an agent's provider.baseUrl and MCP servers: exact names or *.suffix
   * as written in the URL, or IP/CIDR of the address connected to. Unset: none (the workers' own
   * KEEL_OPENAI_BASE_URL is always allowed). E.g. 127.0.0.1 for a local model server.
   */
  KEEL_OUTBOUND_INTERNAL_HOSTS: egressList,
};
