// Entry of the host-side egress proxy bundle (dist/egress-proxy.mjs): see egress-proxy.ts.
import { runEgressProxy } from "./egress-proxy.js";

await runEgressProxy();
