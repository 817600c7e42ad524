export { KubernetesSandboxDriver, type KubernetesDriverOptions, type RuntimeApi, type RuntimeEndpoint } from "./driver.js";
export { KubeApi, KubernetesForbiddenError, AgentSandboxMissingError, KubernetesApiError, KubernetesConflictError, type KubeApiOptions } from "./api.js";
export { SandboxNameError, AGENT_SANDBOX_VERSION } from "./names.js";
export { claimState } from "./state.js";
export { egressRules } from "./objects.js";
export { RuntimeTokens } from "./tokens.js";
