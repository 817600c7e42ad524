// One dedicated connection that LISTENs on channels and reconnects with jittered backoff.
// Workers also hang their liveness lock on it (onConnect), so "connection gone" means one thing.
import pg from "pg";
import { backoffMs } from "../backoff.js";
import type { Logger } from "../logger.js";

export type ListenerOptions = {
  connectionString: string;
  channels: readonly string[];
  onNotification: (channel: string, payload: string) => void;
  /** Runs on every (re)connection before LISTEN; a throw counts as a failed connection. */
  onConnect?: (client: pg.Client) => Promise<void>;
  /** Called once per lost connection (not on stop()). */
  onDisconnect?: (err: unknown) => void;
  logger: Logger;
  applicationName?: string;
  minBackoffMs?: number;
  maxBackoffMs?: number;
};

export class PgListener {
  private client: pg.Client | null = null;
  private stopped = false;
  private connecting: Promise<void> | null = null;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ListenerOptions) {}

  get connected(): boolean {
    return this.client !== null;
  }

  /** Resolves once connected the first time; keeps retrying until then (or until stop()). */
  start(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve) => this.connectLoop(resolve));
    return this.connecting;
  }

  private connectLoop(resolved: () => void): void {
    if (this.stopped) return resolved();
    const client = new pg.Client({
      connectionString: this.opts.connectionString,
      application_name: this.opts.applicationName ?? "keel-listener",
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
    });
    let lost = false;
    const onLost = (err: unknown) => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = null;
      client.end().catch(() => {});
      if (this.stopped) return;
      this.opts.onDisconnect?.(err);
      this.scheduleRetry(resolved);
    };
    client.on("error", onLost);
    client.on("end", () => onLost(new Error("connection ended")));
    client.on("notification", (n) => this.opts.onNotification(n.channel, n.payload ?? ""));
    (async () => {
      await client.connect();
      await this.opts.onConnect?.(client);
      for (const ch of this.opts.channels) await client.query(`LISTEN "${ch.replaceAll('"', '""')}"`);
    })().then(
      () => {
        if (lost) return;
        if (this.stopped) {
          client.end().catch(() => {});
          return resolved();
        }
        this.failures = 0;
        this.client = client;
        resolved();
      },
      (err: unknown) => {
        this.opts.logger.warn({ err: (err as Error).message }, "listener connection failed");
        onLost(err);
      },
    );
  }

  private scheduleRetry(resolved: () => void): void {
    this.failures++;
    const delay = backoffMs(this.failures, this.opts.minBackoffMs ?? 100, this.opts.maxBackoffMs ?? 5_000);
    this.retryTimer = setTimeout(() => this.connectLoop(resolved), delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => {});
  }
}
