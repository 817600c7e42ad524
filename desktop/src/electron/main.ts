// The Electron main entry: one window, locked down (context isolation, no Node in the renderer,
// sandboxed preload), the contract's handlers registered through ipcMain.handle, and events sent
// to every window. All logic lives in src/main/ (plain Node modules, tested without Electron).
//
// Lifecycle (each tested by running this bundle under Node with a stub `electron` module,
// desktop/test/app-main.test.ts):
// - one instance: a second start focuses the first window and exits;
// - the login shell's environment (PATH, KUBECONFIG…) is read before any kubeconfig is;
// - what a window opened (watches, follows, port-forwards) is closed when it reloads, crashes or
//   closes (handles are tagged with the webContents that opened them);
// - quit waits for the cleanup (launcher processes, watches, forwards) up to QUIT_DEADLINE_MS;
// - the launcher's process groups are recorded under userData; the next start stops orphans.
import path from "node:path";
import { app, BrowserWindow, ipcMain, shell, type WebContents } from "electron";
import type { Emit } from "../shared/contract.ts";
import { createHandlers, createMainServices, registerAll, type MainServices } from "../main/ipc.ts";
import { applyLoginShellEnv } from "../main/shell-env.ts";

export const QUIT_DEADLINE_MS = 8_000;

const emit: Emit = (event, payload) => {
  for (const w of BrowserWindow.getAllWindows()) if (!w.isDestroyed()) w.webContents.send(event, payload);
};

/** Closes a window's handles when its page goes away (reload, navigation, crash, close). */
function tieHandlesTo(wc: WebContents, services: MainServices) {
  const id = wc.id;
  const release = () => void services.closeOwner(id);
  // A reload or navigation of the main frame starts a new page: the old page's handles go.
  wc.on("did-start-navigation", (e: unknown, _url?: string, isInPlace?: boolean, isMainFrame?: boolean) => {
    const d = e as { isMainFrame?: boolean; isSameDocument?: boolean };
    if ((d.isMainFrame ?? isMainFrame) && !(d.isSameDocument ?? isInPlace)) release();
  });
  wc.on("render-process-gone", release);
  wc.on("destroyed", release);
}

function createWindow(services: MainServices): BrowserWindow {
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
  tieHandlesTo(win.webContents, services);
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

async function start() {
  // Before anything reads KUBECONFIG or runs a tool.
  const shellEnv = await applyLoginShellEnv(process.env);
  if (!shellEnv.ok && shellEnv.shell) console.warn(`keel: login shell environment not read: ${shellEnv.error}`);

  const userData = app.getPath("userData");
  const services = createMainServices({
    emit,
    launcher: {
      layout: { packaged: app.isPackaged, resourcesPath: process.resourcesPath, stagingDir: path.join(userData, "kind-env") },
      pidFile: path.join(userData, "launcher-groups.json"),
      appVersion: app.getVersion(),
    },
  });
  registerAll((channel, listener) => ipcMain.handle(channel, listener), createHandlers(undefined, services));
  services.kube.watch();
  const stopped = await services.launcher.stopOrphans();
  if (stopped.length) console.warn(`keel: stopped ${stopped.length} launcher process group(s) left by an earlier run: ${stopped.join(", ")}`);
  void services.launcher.detect();

  let win: BrowserWindow | undefined;
  const show = () => {
    if (!win || win.isDestroyed()) win = createWindow(services);
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
  };
  app.on("second-instance", show);
  await app.whenReady();
  show();
  app.on("activate", () => {
    if (BrowserWindow.getAllWindows().length === 0) show();
  });
  app.on("window-all-closed", () => {
    if (process.platform !== "darwin") app.quit();
  });

  // Quit waits for the cleanup (bounded), then quits for real.
  let cleaned = false;
  let cleaning: Promise<void> | undefined;
  app.on("before-quit", (e) => {
    if (cleaned) return;
    e.preventDefault();
    cleaning ??= Promise.race([services.dispose(), new Promise<void>((r) => setTimeout(r, QUIT_DEADLINE_MS).unref())])
      .catch((err: Error) => console.warn(`keel: cleanup on quit failed: ${err.message}`))
      .then(() => {
        cleaned = true;
        app.quit();
      });
  });
}

// A second instance hands over to the first (its "second-instance" event) and exits.
if (!app.requestSingleInstanceLock()) app.quit();
else void start();
