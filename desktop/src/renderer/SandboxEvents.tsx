// The events of a claim, its Sandbox and its pod (core/v1 Events, oldest first), refreshed every 5 s.
import { useQuery } from "@tanstack/react-query";
import type { SandboxRow } from "../shared/contract.ts";
import { call } from "./api.ts";
import { Empty, ErrorBox, Loading, since } from "./ui.tsx";

export function SandboxEvents({ context, row }: { context: string; row: SandboxRow }) {
  const events = useQuery({
    queryKey: [context, "sandbox-events", row.namespace, row.kind, row.name],
    queryFn: () => call("sandboxes:events", { context, namespace: row.namespace, kind: "SandboxClaim", name: row.name }),
    refetchInterval: 5_000,
  });
  return (
    <div className="events" data-testid="sandbox-events">
      <h3>
        Events of {row.name} <span className="muted small">(claim, sandbox and pod)</span>
      </h3>
      {events.isPending ? (
        <Loading what="events" />
      ) : events.isError ? (
        <ErrorBox error={events.error} />
      ) : events.data.length === 0 ? (
        <Empty>No events (Kubernetes keeps them for an hour).</Empty>
      ) : (
        <div className="tablebox">
          <table>
            <thead>
              <tr>
                <th>Object</th>
                <th>Type</th>
                <th>Reason</th>
                <th>Message</th>
                <th>Count</th>
                <th>Last seen</th>
              </tr>
            </thead>
            <tbody>
              {events.data.map((e, i) => (
                <tr key={`${e.kind}/${e.name}/${e.reason}/${i}`} data-reason={e.reason ?? ""}>
                  <td>
                    {e.kind}/{e.name}
                    {e.source && <div className="muted small">{e.source}</div>}
                  </td>
                  <td>
                    <span className={`badge ${e.type === "Warning" ? "warn" : ""}`}>{e.type}</span>
                  </td>
                  <td>{e.reason ?? "–"}</td>
                  <td className="reason">{e.message ?? "–"}</td>
                  <td>{e.count}</td>
                  <td>{since(e.lastSeen)} ago</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
