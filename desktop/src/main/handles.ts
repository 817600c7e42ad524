// Long-lived things the renderer starts and stops by id (sandbox watches, port-forwards), kept
// so the app can also close them all on quit.
export class Handles<T extends { readonly id: string; close(): Promise<void> }> {
  private readonly byId = new Map<string, T>();

  add(h: T): T {
    this.byId.set(h.id, h);
    return h;
  }

  get(id: string): T | undefined {
    return this.byId.get(id);
  }

  /** false: no such id (already closed, or never started). */
  async close(id: string): Promise<boolean> {
    const h = this.byId.get(id);
    if (!h) return false;
    this.byId.delete(id);
    await h.close();
    return true;
  }

  get size(): number {
    return this.byId.size;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.byId.keys()].map((id) => this.close(id)));
  }
}
