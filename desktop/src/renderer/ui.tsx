// Loading, empty and error states, used by every panel so none is ever blank.
import type { ReactNode } from "react";
import { ApiError } from "./api.ts";

export function Loading({ what }: { what: string }) {
  return (
    <p className="state muted" role="status">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <p className="state muted" data-testid="empty">
      {children}
    </p>
  );
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  const code = error instanceof ApiError ? error.code : null;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="error" role="alert" data-code={code ?? undefined}>
      {title && <strong>{title}</strong>}
      {code && <code className="code">{code}</code>}
      <span>{message}</span>
    </div>
  );
}

export function age(seconds: number | null): string {
  if (seconds === null) return "–";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function since(iso: string | null): string {
  if (!iso) return "–";
  return age(Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000)));
}
