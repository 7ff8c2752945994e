import { useEffect, useRef } from 'react';
import type { Raster } from '../lib/imaging/raster';

export function RasterThumb({ raster, size = 56, alt }: { raster: Raster; size?: number; alt: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c) return;
    c.width = raster.width;
    c.height = raster.height;
    c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(raster.data), raster.width, raster.height), 0, 0);
  }, [raster]);
  return <canvas ref={ref} className="thumb" style={{ width: size, height: size }} role="img" aria-label={alt} />;
}
