// Namespaces for the renderer's namespace picker. A user who may not list namespaces (a common
// RBAC setup: a Role in one team namespace) still gets the context's default namespace, so the
// picker works instead of failing the whole view.
import type { KubeConfig } from "@kubernetes/client-node";
import type { NamespaceList } from "../shared/contract.ts";
import { expectStatus, kubeConfigFor, kubeRequest, type Kubeconfig } from "./kube.ts";

export async function listNamespaces(config: Kubeconfig, context: string, kc: KubeConfig = kubeConfigFor(config, context)): Promise<NamespaceList> {
  const fallback = kc.getContextObject(context)?.namespace ?? "default";
  const res = await kubeRequest<{ items: { metadata: { name: string } }[] }>(kc, "GET", "/api/v1/namespaces");
  if (res.status === 403) return { namespaces: [fallback], listable: false };
  const body = expectStatus(kc, res, "list namespaces");
  return { namespaces: body.items.map((n) => n.metadata.name).sort(), listable: true };
}
