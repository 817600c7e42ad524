// The Electron main entry: one window, locked down (context isolation, no Node in the renderer,
// sandboxed preload), the contract's handlers registered through ipcMain.handle, and events sent
// to every window. All logic lives in src/main/ (plain Node modules, tested without Electron).
import path from "node:path";
import { app, BrowserWindow, ipcMain, shell } from "electron";
import type { Emit } from "../shared/contract.ts";
import { createHandlers, createMainServices, registerAll } from "../main/ipc.ts";
import { loadKubeconfig } from "../main/kube.ts";

const emit: Emit = (event, payload) => {
  for (const w of BrowserWindow.getAllWindows()) if (!w.isDestroyed()) w.webContents.send(event, payload);
};
const services = createMainServices({ emit });

function createWindow(): BrowserWindow {
  const win = new BrowserWindow({
    width: 1280,
    height: 800,
    minWidth: 960,
    minHeight: 600,
    title: "Keel",
    webPreferences: {
      preload: path.join(import.meta.dirname, "../preload/index.cjs"),
      contextIsolation: true,
      nodeIntegration: false,
      sandbox: true,
    },
  });
  // Links open in the browser, never inside the app window.
  win.webContents.setWindowOpenHandler(({ url }) => {
    if (/^https?:/.test(url)) void shell.openExternal(url);
    return { action: "deny" };
  });
  win.webContents.on("will-navigate", (e) => e.preventDefault());
  if (process.env.ELECTRON_RENDERER_URL) void win.loadURL(process.env.ELECTRON_RENDERER_URL);
  else void win.loadFile(path.join(import.meta.dirname, "../renderer/index.html"));
  return win;
}

registerAll(
  (channel, listener) => ipcMain.handle(channel, listener),
  createHandlers(() => loadKubeconfig(), services),
);

void app.whenReady().then(() => {
  createWindow();
  app.on("activate", () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
});

app.on("window-all-closed", () => {
  if (process.platform !== "darwin") app.quit();
});

app.on("before-quit", () => {
  void services.dispose();
});
