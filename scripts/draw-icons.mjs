// Draws the PWA icons (public/icons/*.png) with pngjs: a stylised chest X-ray (two lung fields and a spine) on the
// app's dark theme. Run once: `node scripts/draw-icons.mjs`; the PNGs are committed.
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';

const outDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../public/icons');

function draw(size, { maskable }) {
  const png = new PNG({ width: size, height: size });
  const bg = [15, 23, 42];
  // Maskable icons must keep their content inside the central 80% "safe zone".
  const scale = maskable ? 0.72 : 0.9;
  const r = (size / 2) * scale;
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const i = (y * size + x) * 4;
      const u = (x - c) / r; // -1..1 inside the drawing
      const v = (y - c) / r;
      let col = bg;
      let alpha = 255;
      if (!maskable) {
        // rounded-square plate; transparent corners
        const k = Math.max(Math.abs(u), Math.abs(v));
        const corner = Math.hypot(Math.max(Math.abs(u) - 0.75, 0), Math.max(Math.abs(v) - 0.75, 0));
        if (k > 1.05 / scale || corner > 0.3) alpha = 0;
      }
      // lungs: two ellipses, brighter towards their centre
      const lung = (cx) => ((u - cx) / 0.34) ** 2 + ((v - 0.05) / 0.62) ** 2;
      const l = Math.min(lung(-0.42), lung(0.42));
      if (l < 1) {
        const g = Math.round(90 + 120 * (1 - l));
        col = [g, g + 10, g + 25];
      }
      // spine
      if (Math.abs(u) < 0.07 && v > -0.75 && v < 0.85) col = [226, 232, 240];
      // ribs hint
      if (l < 1 && Math.abs(Math.sin((v + 1) * 9)) < 0.08) col = [200, 210, 225];
      png.data[i] = col[0];
      png.data[i + 1] = col[1];
      png.data[i + 2] = col[2];
      png.data[i + 3] = alpha;
    }
  }
  return PNG.sync.write(png);
}

fs.mkdirSync(outDir, { recursive: true });
fs.writeFileSync(path.join(outDir, 'icon-192.png'), draw(192, { maskable: false }));
fs.writeFileSync(path.join(outDir, 'icon-512.png'), draw(512, { maskable: false }));
fs.writeFileSync(path.join(outDir, 'icon-maskable-512.png'), draw(512, { maskable: true }));
console.log('icons written to', outDir);
