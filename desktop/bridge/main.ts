// `npm run bridge -w desktop`: serves the built renderer (out/renderer; run `npm run build -w desktop`
// first) and the DesktopApi from the main-process modules on loopback, and prints the page URL with
// this launch's token. Uses KUBECONFIG / ~/.kube/config like the app. KEEL_BRIDGE_PORT picks the
// port (default: a free one).
import path from "node:path";
import { existsSync } from "node:fs";
import { startBridge } from "./server.ts";

const staticDir = path.resolve(import.meta.dirname, "../out/renderer");
if (!existsSync(path.join(staticDir, "index.html"))) {
  process.stderr.write(`no renderer build in ${staticDir}: run npm run build -w desktop first\n`);
  process.exit(2);
}
const port = process.env.KEEL_BRIDGE_PORT ? Number(process.env.KEEL_BRIDGE_PORT) : 0;
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`KEEL_BRIDGE_PORT must be a port number (0-65535), got "${process.env.KEEL_BRIDGE_PORT}"\n`);
  process.exit(2);
}
const bridge = await startBridge({ staticDir, port });
process.stdout.write(`desktop bridge: open ${bridge.pageUrl}\n`);
const stop = () => void bridge.close().then(() => process.exit(0));
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
