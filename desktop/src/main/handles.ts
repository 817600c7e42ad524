// Long-lived things the renderer starts and stops by id (sandbox watches, port-forwards, session
// follows), each tagged with the window (webContents id) whose IPC call opened it, so the app can
// close one window's handles when it reloads, crashes or closes, and all of them on quit.
import { AsyncLocalStorage } from "node:async_hooks";

/** The webContents id of the IPC call being handled (ipc.ts handle() sets it); undefined outside one. */
export const caller = new AsyncLocalStorage<number | undefined>();

export class Handles<T extends { readonly id: string; close(): Promise<void> }> {
  private readonly byId = new Map<string, { h: T; owner: number | undefined }>();

  /** Tagged with the calling window unless `owner` is given. */
  add(h: T, owner: number | undefined = caller.getStore()): T {
    this.byId.set(h.id, { h, owner });
    return h;
  }

  get(id: string): T | undefined {
    return this.byId.get(id)?.h;
  }

  /** false: no such id (already closed, or never started). */
  async close(id: string): Promise<boolean> {
    const e = this.byId.get(id);
    if (!e) return false;
    this.byId.delete(id);
    await e.h.close();
    return true;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Ids opened by one window. */
  ownedBy(owner: number): string[] {
    return [...this.byId].filter(([, e]) => e.owner === owner).map(([id]) => id);
  }

  async closeOwner(owner: number): Promise<void> {
    await Promise.all(this.ownedBy(owner).map((id) => this.close(id)));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.byId.keys()].map((id) => this.close(id)));
  }
}
