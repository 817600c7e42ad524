// Draws the app icon (resources/icon.png, 512×512 RGBA): a keel (a hull with its fin) in white on
// a deep-blue rounded square. electron-builder takes this one PNG for every platform (it makes the
// .icns and the Linux sizes from it). Run: node desktop/scripts/make-icon.mjs
import { writeFileSync } from "node:fs";
import path from "node:path";
import { deflateSync } from "node:zlib";

const N = 512;
const px = Buffer.alloc(N * N * 4);
const inside = {
  // A rounded square with a 96 px corner radius.
  tile: (x, y) => {
    const r = 96,
      cx = Math.min(Math.max(x, r), N - r),
      cy = Math.min(Math.max(y, r), N - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  },
  // The hull: a wide trapezoid, narrower at the bottom.
  hull: (x, y) => y >= 250 && y <= 320 && x >= 96 + (y - 250) * 0.9 && x <= 416 - (y - 250) * 0.9,
  // The keel fin under it, and the mast above it.
  fin: (x, y) => y > 320 && y <= 420 && Math.abs(x - 256) <= 28 - (y - 320) * 0.18,
  mast: (x, y) => y >= 96 && y < 250 && Math.abs(x - 256) <= 10,
  sail: (x, y) => y >= 110 && y <= 236 && x > 272 && x <= 272 + (y - 110) * 0.95,
};
for (let y = 0; y < N; y++) {
  for (let x = 0; x < N; x++) {
    const i = (y * N + x) * 4;
    if (!inside.tile(x + 0.5, y + 0.5)) continue; // transparent outside the tile
    const white = inside.hull(x, y) || inside.fin(x, y) || inside.mast(x, y) || inside.sail(x, y);
    const shade = Math.round(40 * (y / N));
    px.set(white ? [245, 248, 255, 255] : [20, 58 + shade, 120 + shade, 255], i);
  }
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
};
const ihdr = Buffer.alloc(13);
ihdr.writeUInt32BE(N, 0);
ihdr.writeUInt32BE(N, 4);
ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, no interlace
const raw = Buffer.alloc(N * (N * 4 + 1));
for (let y = 0; y < N; y++) px.copy(raw, y * (N * 4 + 1) + 1, y * N * 4, (y + 1) * N * 4); // filter byte 0 per row
const png = Buffer.concat([
  Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
  chunk("IHDR", ihdr),
  chunk("IDAT", deflateSync(raw, { level: 9 })),
  chunk("IEND", Buffer.alloc(0)),
]);
const out = path.join(import.meta.dirname, "../resources/icon.png");
writeFileSync(out, png);
console.log(`wrote ${out} (${png.length} bytes)`);
