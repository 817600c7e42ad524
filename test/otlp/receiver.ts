// An OTLP/HTTP trace receiver on loopback: the stand-in for an OpenTelemetry Collector. It
// accepts POST /v1/traces as the OTLP specification defines it (application/x-protobuf, gzip or
// not; application/json too) and decodes protobuf bodies with protobufjs and the official
// opentelemetry-proto definitions (proto/, v1.11.0, Apache-2.0), so what the exporter sends is
// checked against the wire format itself. Answers an empty ExportTraceServiceResponse.
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import protobuf from "protobufjs";

const protoRoot = path.join(import.meta.dirname, "proto");

export type ReceivedSpan = {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  /** Attribute values as plain JS values (strings, numbers, booleans). */
  attributes: Record<string, unknown>;
  status: { code: number; message: string };
  serviceName: string;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
};

export type OtlpReceiver = {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  spans: ReceivedSpan[];
  /** Every request body as received (decompressed): for "this text never left the process" checks. */
  bodies: Buffer[];
  /** Requests refused (wrong path, method or content type), as "METHOD path content-type". */
  refused: string[];
  close(): Promise<void>;
};

async function exportRequestType(): Promise<protobuf.Type> {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoRoot, target));
  await root.load("opentelemetry/proto/collector/trace/v1/trace_service.proto", { keepCase: false });
  return root.lookupType("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest");
}

const hex = (b: Uint8Array | string | undefined) => (typeof b === "string" ? Buffer.from(b, "base64") : Buffer.from(b ?? [])).toString("hex");

function anyValue(v: Record<string, unknown> | undefined): unknown {
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if ("arrayValue" in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(anyValue);
  return JSON.stringify(v);
}

type KeyValue = { key: string; value?: Record<string, unknown> };
const attrs = (kvs: KeyValue[] | undefined) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));

async function body(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of req) parts.push(p as Buffer);
  const raw = Buffer.concat(parts);
  return req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const Request = await exportRequestType();
  const spans: ReceivedSpan[] = [];
  const bodies: Buffer[] = [];
  const refused: string[] = [];
  const server = createServer((req, res) => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
    if (req.method !== "POST" || req.url !== "/v1/traces" || (type !== "application/x-protobuf" && type !== "application/json")) {
      refused.push(`${req.method} ${req.url} ${type}`);
      res.writeHead(404).end();
      return;
    }
    body(req).then(
      (b) => {
        bodies.push(b);
        // toObject with bytes as Buffers and 64-bit ints as strings: ids become hex, times BigInt.
        const msg =
          type === "application/json"
            ? (JSON.parse(b.toString("utf8")) as Record<string, unknown>)
            : Request.toObject(Request.decode(b), { longs: String, bytes: Buffer, defaults: true });
        for (const rs of (msg.resourceSpans as Record<string, any>[]) ?? []) {
          const serviceName = String(attrs(rs.resource?.attributes)["service.name"] ?? "");
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                traceId: hex(s.traceId),
                spanId: hex(s.spanId),
                parentSpanId: hex(s.parentSpanId),
                name: s.name,
                kind: s.kind,
                attributes: attrs(s.attributes),
                status: { code: s.status?.code ?? 0, message: s.status?.message ?? "" },
                serviceName,
                startTimeUnixNano: BigInt(s.startTimeUnixNano ?? 0),
                endTimeUnixNano: BigInt(s.endTimeUnixNano ?? 0),
              });
        }
        const out = type === "application/json" ? Buffer.from("{}") : Buffer.alloc(0); // an empty ExportTraceServiceResponse
        res.writeHead(200, { "content-type": type }).end(out);
      },
      (err: unknown) => res.writeHead(400, { "content-type": "text/plain" }).end(String(err)),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    bodies,
    refused,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}
