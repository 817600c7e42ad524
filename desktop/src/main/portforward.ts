// Port-forward to a Service (Keel's web, keel/keel-web:3000 by default) through the Kubernetes
// API, as `kubectl port-forward svc/…` does: pick a Ready pod behind the Service's selector,
// resolve the Service port's targetPort on it, listen on 127.0.0.1, and carry each local TCP
// connection over its own client-node PortForward WebSocket. The resulting base URL is what the
// sessions module connects to.
//
// One probe connection is opened before listening, so a refusal (RBAC, a pod gone, a node whose
// kubelet does not answer) is reported when the forward starts, not on the first request.
// client-node's WebSocketHandler is given a socket factory that reads the body of a failed
// upgrade: without it the only message is "Unexpected server response: 500".
import { randomUUID } from "node:crypto";
import net from "node:net";
import { PassThrough } from "node:stream";
import { PortForward, type KubeConfig } from "@kubernetes/client-node";
import { WebSocketHandler } from "@kubernetes/client-node/dist/web-socket-handler.js";
import WebSocket from "ws";
import type { Emit, PortForwardInfo, PortForwardStatus } from "../shared/contract.ts";
import { expectStatus, KubeError, kubeRequest } from "./kube.ts";

type ServicePort = { name?: string; port: number; targetPort?: number | string };
type Pod = {
  metadata: { name: string; creationTimestamp?: string; deletionTimestamp?: string };
  spec?: { containers?: { ports?: { name?: string; containerPort: number }[] }[] };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
};

const who = (kc: KubeConfig) => {
  const ctx = kc.getCurrentContext();
  return { context: ctx, user: kc.getContextObject(ctx)?.user ?? "(no user)" };
};

/** The Service's pod to forward to and the container port behind `port`. */
export async function resolveServiceTarget(
  kc: KubeConfig,
  t: { namespace: string; service: string; port: number },
): Promise<{ pod: string; targetPort: number }> {
  const svcRes = await kubeRequest(kc, "GET", `/api/v1/namespaces/${t.namespace}/services/${t.service}`);
  if (svcRes.status === 404) {
    throw new KubeError(
      t.service === "keel-web" ? "keel_missing" : "not_found",
      `there is no Service ${t.namespace}/${t.service} in context "${who(kc).context}"${t.service === "keel-web" ? ": Keel is not installed there (k8s/overlays/<kind|production>, or kind/up.sh for a local cluster)" : ""}`,
      404,
    );
  }
  const svc = expectStatus(kc, svcRes, `read Service ${t.namespace}/${t.service}`);
  const ports: ServicePort[] = svc.spec?.ports ?? [];
  const sp = ports.find((p) => p.port === t.port);
  if (!sp)
    throw new KubeError(
      "not_found",
      `Service ${t.namespace}/${t.service} has no port ${t.port} (its ports: ${ports.map((p) => p.port).join(", ") || "none"})`,
      404,
    );
  const selector: Record<string, string> = svc.spec?.selector ?? {};
  if (!Object.keys(selector).length)
    throw new KubeError("invalid_input", `Service ${t.namespace}/${t.service} has no selector, so it has no pods to forward to`);

  const q = new URLSearchParams({
    labelSelector: Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(","),
  });
  const podsRes = await kubeRequest<{ items: Pod[] }>(kc, "GET", `/api/v1/namespaces/${t.namespace}/pods?${q}`);
  const pods = expectStatus(kc, podsRes, `list pods in namespace ${t.namespace}`).items;
  const ready = pods
    .filter(
      (p) => !p.metadata.deletionTimestamp && p.status?.phase === "Running" && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
    )
    .sort((a, b) => (b.metadata.creationTimestamp ?? "").localeCompare(a.metadata.creationTimestamp ?? ""));
  const pod = ready[0];
  if (!pod) {
    throw new KubeError(
      "not_found",
      `no Ready pod behind Service ${t.namespace}/${t.service} (${pods.length} pod${pods.length === 1 ? "" : "s"} match its selector): wait for the rollout, e.g. kubectl -n ${t.namespace} rollout status deployment/${t.service}`,
      404,
    );
  }
  const target = sp.targetPort ?? sp.port;
  if (typeof target === "number") return { pod: pod.metadata.name, targetPort: target };
  const named = pod.spec?.containers?.flatMap((c) => c.ports ?? []).find((p) => p.name === target);
  if (!named)
    throw new KubeError(
      "not_found",
      `pod ${t.namespace}/${pod.metadata.name} has no container port named "${target}" (Service ${t.service} port ${t.port} targets it)`,
      404,
    );
  return { pod: pod.metadata.name, targetPort: named.containerPort };
}

/** A ws socket factory that turns a refused upgrade into an error carrying the server's own message. */
function socketFactory(uri: string, protocols: string[], opts: WebSocket.ClientOptions): WebSocket {
  const ws = new WebSocket(uri, protocols, opts);
  ws.on("unexpected-response", (req, res) => {
    let body = "";
    res.setEncoding("utf8");
    res.on("data", (d: string) => (body += d.slice(0, 4096)));
    res.on("end", () => {
      let message = body.trim();
      try {
        message = JSON.parse(body).message ?? message;
      } catch {
        /* plain text */
      }
      // The request is complete, so req.destroy(err) would emit nothing: report on the socket
      // (client-node's onerror rejects the connect), then drop it.
      ws.emit("error", Object.assign(new Error(message || `HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
      ws.terminate();
    });
  });
  return ws;
}

function forwardError(kc: KubeConfig, t: { namespace: string; pod: string; targetPort: number }, err: unknown): KubeError {
  const e = ((err as { error?: unknown })?.error ?? err) as Error & { statusCode?: number; code?: string };
  const { context, user } = who(kc);
  const what = `pod ${t.namespace}/${t.pod} port ${t.targetPort}`;
  switch (e.statusCode) {
    case 401:
      return new KubeError(
        "unauthorized",
        `the API server of context "${context}" rejected the credentials of user "${user}" (401 Unauthorized) when forwarding to ${what}: get fresh credentials and retry`,
        401,
        { cause: e },
      );
    case 403:
      return new KubeError(
        "forbidden",
        `user "${user}" of context "${context}" may not port-forward to ${what} (403 Forbidden: ${e.message}). Ask a cluster admin for a Role that allows create on pods/portforward`,
        403,
        { cause: e },
      );
    case 404:
      return new KubeError("not_found", `cannot forward to ${what}: not found (${e.message}); the pod may have been replaced, start the forward again`, 404, {
        cause: e,
      });
    case undefined:
      return new KubeError(
        "unreachable",
        `cannot reach the API server of context "${context}" to forward to ${what}: ${e.message}${e.code ? ` (${e.code})` : ""}`,
        undefined,
        { cause: e },
      );
    default:
      return new KubeError(
        "unreachable",
        `the API server of context "${context}" could not open a port-forward to ${what} (HTTP ${e.statusCode}: ${e.message}). The pod's node must accept the API server's connection (its kubelet)`,
        e.statusCode,
        { cause: e },
      );
  }
}

export class ServicePortForward {
  readonly id = randomUUID();
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly forwarder: PortForward;

  private constructor(
    private readonly kc: KubeConfig,
    readonly info: PortForwardInfo,
    private readonly servicePort: number,
    private readonly emit: Emit,
  ) {
    this.forwarder = new PortForward(kc, true, new WebSocketHandler(kc, socketFactory));
  }

  static async open(
    kc: KubeConfig,
    o: { context: string; namespace: string; service: string; port: number; localPort: number; emit: Emit },
  ): Promise<ServicePortForward> {
    const target = await resolveServiceTarget(kc, o);
    const f = new ServicePortForward(
      kc,
      {
        forwardId: "",
        context: o.context,
        namespace: o.namespace,
        service: o.service,
        pod: target.pod,
        targetPort: target.targetPort,
        localPort: 0,
        baseUrl: "",
      },
      o.port,
      o.emit,
    );
    await f.probe();
    await f.listen(o.localPort);
    return f;
  }

  /** One WebSocket opened and closed: the API server accepts the forward and reaches the pod's node. */
  private async probe(): Promise<void> {
    const input = new PassThrough();
    try {
      const ws = (await this.forwarder.portForward(this.info.namespace, this.info.pod, [this.info.targetPort], new PassThrough(), null, input)) as WebSocket;
      ws.close();
    } catch (err) {
      throw forwardError(this.kc, this.info, err);
    } finally {
      input.destroy();
    }
  }

  private async listen(localPort: number): Promise<void> {
    const server = net.createServer((socket) => this.connection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new KubeError(
            "conflict",
            err.code === "EADDRINUSE"
              ? `local port ${localPort} is in use: choose another (or 0 for any free port)`
              : `cannot listen on 127.0.0.1:${localPort}: ${err.message}`,
          ),
        ),
      );
      server.listen(localPort, "127.0.0.1", () => resolve());
    });
    this.server = server;
    const port = (server.address() as net.AddressInfo).port;
    Object.assign(this.info, { forwardId: this.id, localPort: port, baseUrl: `http://127.0.0.1:${port}` });
    this.status("listening", null);
  }

  private connection(socket: net.Socket, retried = false) {
    if (!retried) {
      this.sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => this.sockets.delete(socket));
    }
    const errors = new PassThrough();
    errors.on("data", (d: Buffer) => {
      const text = d.toString("utf8").trim();
      if (text) this.status("error", `forwarding to pod ${this.info.namespace}/${this.info.pod} port ${this.info.targetPort} failed: ${text}`);
    });
    const pod = this.info.pod;
    // The socket stays paused until client-node reads it, so bytes sent before the WebSocket opens wait.
    this.forwarder.portForward(this.info.namespace, pod, [this.info.targetPort], socket, errors, socket).then(
      (ws) => {
        const w = ws as WebSocket;
        w.on("close", () => socket.end());
        socket.on("close", () => w.close());
      },
      async (err) => {
        const e = forwardError(this.kc, this.info, err);
        // The pod is gone (a rollout replaced it): follow the Service to its new pod, once.
        if (e.code === "not_found" && !retried && !socket.destroyed && (await this.followService(pod))) return this.connection(socket, true);
        this.status("error", e.message);
        socket.destroy();
      },
    );
  }

  /** Re-resolves the Service; true when it now points at a pod other than `gone`. */
  private async followService(gone: string): Promise<boolean> {
    if (this.info.pod !== gone) return true; // another connection followed it already
    const before = gone;
    try {
      const t = await resolveServiceTarget(this.kc, { namespace: this.info.namespace, service: this.info.service, port: this.servicePort });
      if (t.pod === before) return false;
      if (this.info.pod !== before) return true;
      Object.assign(this.info, t);
      this.status("listening", `pod ${this.info.namespace}/${before} is gone; forwarding to ${t.pod} now`);
      return true;
    } catch {
      return false;
    }
  }

  private status(state: PortForwardStatus["state"], message: string | null) {
    this.emit("keel:portforward:status", { forwardId: this.id, state, message });
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
    this.status("stopped", null);
  }
}
