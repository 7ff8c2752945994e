/**
 * What the gallery exports and `npm run generate` writes: the grid image (rows = seeds, columns = sides) and the
 * JSON record that reproduces it (prompt, seeds, steps, guidance, model ids and the sha256 of every model file).
 */
import type { ModelEntry } from '../models/manifest-types';
import type { Side, UnetLayout } from './pipeline';
import { filesForLayout } from './fit';

export interface ImageScore {
  classifierId: string;
  classifierWeights: string;
  label: string;
  /** P(PNEUMONIA) (the classifier's positive label). */
  positiveProbability: number;
}

export interface RecordImage {
  side: Side;
  seed: number;
  file?: string;
  width: number;
  height: number;
  /** sha256 of the PNG file, when written */
  sha256?: string;
  timesteps: number[];
  stepMs: number[];
  totalMs: number;
  score?: ImageScore;
}

export interface GenerationRecord {
  kind: 'cxr-studio generation';
  version: 1;
  created: string;
  prompt: string;
  negative_prompt: string;
  seeds: number[];
  steps: number;
  guidance_scale: number;
  sides: Side[];
  model: {
    id: string;
    name: string;
    weights: string;
    dtype: string;
    unet_layout: UnetLayout;
    files: { role: string; path: string; sha256: string; bytes: number }[];
  };
  backend: string;
  scheduler: 'LCMScheduler';
  generator: "torch.Generator('cpu').manual_seed(seed) stream (initial latents, then each step's noise)";
  /** Random-weight fixtures make meaningless pictures: said here and on every image. */
  random_weights: boolean;
  images: RecordImage[];
}

export function generationRecord(a: {
  entry: ModelEntry;
  dtype: string;
  layout: UnetLayout;
  backend: string;
  prompt: string;
  negativePrompt?: string;
  seeds: number[];
  steps: number;
  guidanceScale: number;
  sides: Side[];
  images: RecordImage[];
  created?: Date;
}): GenerationRecord {
  const variant = a.entry.variants[a.dtype as 'fp32'];
  return {
    kind: 'cxr-studio generation',
    version: 1,
    created: (a.created ?? new Date()).toISOString(),
    prompt: a.prompt,
    negative_prompt: a.negativePrompt ?? '',
    seeds: a.seeds,
    steps: a.steps,
    guidance_scale: a.guidanceScale,
    sides: a.sides,
    model: {
      id: a.entry.id,
      name: a.entry.name,
      weights: a.entry.weights,
      dtype: a.dtype,
      unet_layout: a.layout,
      files: variant ? filesForLayout(variant, a.layout).map((f) => ({ role: f.role, path: f.path, sha256: f.sha256, bytes: f.bytes })) : [],
    },
    backend: a.backend,
    scheduler: 'LCMScheduler',
    generator: "torch.Generator('cpu').manual_seed(seed) stream (initial latents, then each step's noise)",
    random_weights: a.entry.weights === 'random-fixture',
    images: a.images,
  };
}

export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

/**
 * Rows of images into one RGBA grid with `gap` px of background between cells (cells are as large as the largest
 * image; smaller ones are centred). Nearest-neighbour upscaling by an integer `scale` (tiny fixtures are 32 px).
 */
export function composeGrid(rows: (RgbaImage | null)[][], gap = 4, scale = 1, background = [24, 24, 24, 255]): RgbaImage {
  const cols = Math.max(0, ...rows.map((r) => r.length));
  const cells = rows.flat().filter((x): x is RgbaImage => !!x);
  const cw = Math.max(1, ...cells.map((c) => c.width)) * scale;
  const ch = Math.max(1, ...cells.map((c) => c.height)) * scale;
  const width = cols * cw + (cols + 1) * gap;
  const height = rows.length * ch + (rows.length + 1) * gap;
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) data.set(background, i * 4);
  rows.forEach((row, r) =>
    row.forEach((img, c) => {
      if (!img) return;
      const ox = gap + c * (cw + gap) + Math.floor((cw - img.width * scale) / 2);
      const oy = gap + r * (ch + gap) + Math.floor((ch - img.height * scale) / 2);
      for (let y = 0; y < img.height * scale; y++) {
        for (let x = 0; x < img.width * scale; x++) {
          const si = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * 4;
          const di = ((oy + y) * width + ox + x) * 4;
          data[di] = img.data[si];
          data[di + 1] = img.data[si + 1];
          data[di + 2] = img.data[si + 2];
          data[di + 3] = img.data[si + 3];
        }
      }
    }),
  );
  return { width, height, data };
}
