export { KubernetesSandboxDriver, type KubernetesDriverOptions, type RuntimeApi, type RuntimeEndpoint } from "./driver.js";
export { KubeApi, KubernetesForbiddenError, AgentSandboxMissingError } from "./api.js";
export { SandboxNameError, AGENT_SANDBOX_VERSION } from "./names.js";
export { claimState } from "./state.js";
export { egressRules } from "./objects.js";
