/**
 * Binary mask → polygons in image coordinates, exactly: boundaries follow pixel edges (crack following), so filling
 * the polygons with the even-odd rule at pixel centres gives the mask back pixel for pixel. Vertices are pixel
 * corners (integers, x right, y down); collinear vertices are dropped. Outer rings run clockwise on screen
 * (y down), holes counter-clockwise; both are returned as rings and the even-odd rule needs no nesting.
 */

export type Ring = [number, number][];

/** Rings of a w×h 0/1 mask (row-major; any non-zero is foreground). */
export function maskToPolygons(mask: ArrayLike<number>, w: number, h: number): Ring[] {
  const fg = (x: number, y: number) => x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] !== 0;
  // Directed boundary edges with the foreground on the right (screen coordinates): keyed by start vertex.
  const W1 = w + 1;
  const next = new Map<number, number[]>();
  const add = (x0: number, y0: number, x1: number, y1: number) => {
    const k = y0 * W1 + x0;
    const v = y1 * W1 + x1;
    const l = next.get(k);
    if (l) l.push(v);
    else next.set(k, [v]);
  };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!fg(x, y)) continue;
      if (!fg(x, y - 1)) add(x, y, x + 1, y); // top edge, left → right
      if (!fg(x + 1, y)) add(x + 1, y, x + 1, y + 1); // right edge, down
      if (!fg(x, y + 1)) add(x + 1, y + 1, x, y + 1); // bottom edge, right → left
      if (!fg(x - 1, y)) add(x, y + 1, x, y); // left edge, up
    }
  }
  const rings: Ring[] = [];
  const dirOf = (a: number, b: number): [number, number] => [(b % W1) - (a % W1), Math.floor(b / W1) - Math.floor(a / W1)];
  for (const start of [...next.keys()].sort((a, b) => a - b)) {
    while (next.get(start)?.length) {
      const ring: number[] = [start];
      let prev = start;
      let cur = next.get(start)!.pop()!;
      while (cur !== start) {
        ring.push(cur);
        const outs = next.get(cur)!;
        let pick = 0;
        if (outs.length > 1) {
          // A vertex where two regions touch diagonally: turn right (keep the foreground pixel's own boundary).
          const [dx, dy] = dirOf(prev, cur);
          const right: [number, number] = [-dy, dx];
          const j = outs.findIndex((o) => {
            const [ex, ey] = dirOf(cur, o);
            return ex === right[0] && ey === right[1];
          });
          pick = j >= 0 ? j : 0;
        }
        const nxt = outs.splice(pick, 1)[0];
        if (!outs.length) next.delete(cur);
        prev = cur;
        cur = nxt;
      }
      if (!next.get(start)?.length) next.delete(start);
      rings.push(simplify(ring.map((v) => [v % W1, Math.floor(v / W1)] as [number, number])));
    }
  }
  return rings;
}

function simplify(r: Ring): Ring {
  const out: Ring = [];
  const n = r.length;
  for (let i = 0; i < n; i++) {
    const a = r[(i - 1 + n) % n];
    const b = r[i];
    const c = r[(i + 1) % n];
    const cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]);
    if (cross !== 0) out.push(b);
  }
  return out;
}

/** Even-odd fill of rings at pixel centres → w×h 0/1 mask (the inverse of maskToPolygons, for checks/imports). */
export function polygonsToMask(rings: Ring[], w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const cy = y + 0.5;
    const xs: number[] = [];
    for (const r of rings) {
      for (let i = 0; i < r.length; i++) {
        const [x0, y0] = r[i];
        const [x1, y1] = r[(i + 1) % r.length];
        if ((y0 <= cy) !== (y1 <= cy)) xs.push(x0 + ((cy - y0) * (x1 - x0)) / (y1 - y0));
      }
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil(xs[k] - 0.5));
      const to = Math.min(w - 1, Math.floor(xs[k + 1] - 0.5));
      for (let x = from; x <= to; x++) out[y * w + x] ^= 1;
    }
  }
  return out;
}

/** Signed area (shoelace; positive = clockwise on screen with y down). */
export function ringArea(r: Ring): number {
  let a = 0;
  for (let i = 0; i < r.length; i++) {
    const [x0, y0] = r[i];
    const [x1, y1] = r[(i + 1) % r.length];
    a += x0 * y1 - x1 * y0;
  }
  return a / 2;
}
