// The renderer's one door into main: a frozen `DesktopApi` on window.desktop. Every invoke goes
// to the channel of the same name (src/main/ipc.ts wraps each handler into a Result); events
// are subscribed per name with an unsubscribe function. Nothing else of Electron is exposed.
import { contextBridge, ipcRenderer, type IpcRendererEvent } from "electron";
import { channels, events, type DesktopApi, type EventName } from "../shared/contract.ts";

const eventNames = new Set<string>(Object.values(events));

const api = Object.fromEntries(Object.values(channels).map((ch) => [ch, (...args: unknown[]) => ipcRenderer.invoke(ch, ...args)])) as Omit<DesktopApi, "on">;

const desktop: DesktopApi = Object.freeze({
  ...api,
  on(event: EventName, listener: (payload: unknown) => void) {
    if (!eventNames.has(event)) throw new Error(`unknown event ${event}`);
    const wrapped = (_e: IpcRendererEvent, payload: unknown) => listener(payload);
    ipcRenderer.on(event, wrapped);
    return () => void ipcRenderer.removeListener(event, wrapped);
  },
} as DesktopApi);

contextBridge.exposeInMainWorld("desktop", desktop);
