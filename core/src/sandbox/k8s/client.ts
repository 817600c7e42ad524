// `@keel/core/k8s`: the Kubernetes pieces the sandbox driver and the desktop app share, so the
// two read agent-sandbox objects the same way: the API client (retries, watches, typed errors),
// the group/version names, the object shape and what a claim's state is. No database, no
// driver: the desktop's main process loads this entry point and nothing of the server.
export { KubeApi, KubernetesForbiddenError, AgentSandboxMissingError, KubernetesApiError, KubernetesConflictError, type KubeApiOptions } from "./api.js";
export { AGENT_SANDBOX_VERSION, API_VERSION, CORE_GROUP, EXT_GROUP, LABELS, ANNOTATIONS, MANAGER, teamNamespace, sessionSelector } from "./names.js";
export type { K8sObject } from "./objects.js";
export { claimState, sandboxSuspended } from "./state.js";
