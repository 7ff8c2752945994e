/**
 * Headless converter for researchers and tests, on the same decoding and display modules as the app.
 *
 *   npm run convert -- FILE_OR_DIR... --out DIR [--keep-phi] [--all-frames]
 *
 * For each input (directories walked recursively, formats detected from the bytes) writes into DIR:
 * - <name>.png: the displayed image, 8-bit, exactly as the viewer shows it at its default window (modality LUT,
 *   VOI LUT / window with its function, MONOCHROME1 / Presentation LUT Shape, colour conversion, palette);
 * - <name>.modality.png (16-bit greyscale) or <name>.modality.npy (float32) with the modality values, when the source
 *   has more than 8 bits stored (PNG when every value is an integer in 0..65535, .npy otherwise);
 * - <name>.json: size, frames, photometric, transfer syntax, codec, the window or LUT used, notes; identifying DICOM
 *   attributes (names, IDs, dates, places, UIDs), the input path and free-text attributes (descriptions, comments,
 *   explanations, device names: sidecar-privacy.ts) only with --keep-phi.
 * Multi-frame files write frame 1 unless --all-frames (then <name>.f0001.png ...). A file that cannot be read prints
 * "<path>: <message>" on stderr and the run goes on. Exit status 0 when at least one file was converted, else 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { decodeImageFileNode } from '../platform/node/decode';
import { readInputFile, walkFiles } from '../platform/node/read-input';
import { isImageDecodeError } from '../lib/imaging';
import { encodeNpyFloat32, planConversion, type ConversionPlan } from '../lib/imaging/export';
import { freeTextValues, scrubValues, withoutFreeText } from './sidecar-privacy';

interface Args {
  inputs: string[];
  out: string;
  keepPhi: boolean;
  allFrames: boolean;
}

const HELP = 'usage: npm run convert -- FILE_OR_DIR... --out DIR [--keep-phi] [--all-frames]';
const log = (msg: string) => process.stderr.write(msg + '\n');

function parseArgs(argv: string[]): Args {
  const a: Args = { inputs: [], out: '', keepPhi: false, allFrames: false };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--out') a.out = argv[++i] ?? '';
    else if (v === '--keep-phi') a.keepPhi = true;
    else if (v === '--all-frames') a.allFrames = true;
    else if (v === '-h' || v === '--help') {
      process.stdout.write(HELP + '\n');
      process.exit(0);
    } else if (v.startsWith('--')) throw new Error(`unknown option ${v}\n${HELP}`);
    else a.inputs.push(v);
  }
  if (!a.out || a.inputs.length === 0) throw new Error(HELP);
  return a;
}

/** Files under each input (symlinks followed, hidden entries skipped), sorted; a file input is itself. */
function expand(inputs: string[]): { file: string; rel: string }[] {
  const out: { file: string; rel: string }[] = [];
  for (const input of inputs) {
    const st = fs.statSync(input, { throwIfNoEntry: false });
    if (!st) {
      log(`${input}: no such file or directory`);
      continue;
    }
    if (st.isFile()) {
      out.push({ file: input, rel: path.basename(input) });
      continue;
    }
    for (const p of walkFiles(input)) out.push({ file: p, rel: path.relative(input, p) });
  }
  return out;
}

function pngBytes(width: number, height: number, channels: 1 | 3, data: Uint8Array | Uint16Array): Buffer {
  const png = new PNG({ width, height, colorType: channels === 1 ? 0 : 2, inputColorType: channels === 1 ? 0 : 2, bitDepth: data instanceof Uint16Array ? 16 : 8, inputHasAlpha: false });
  if (data instanceof Uint16Array) {
    // pngjs reads 16-bit input as platform-order Uint16 over the WHOLE underlying ArrayBuffer: give it its own
    png.data = Buffer.from(new Uint16Array(data).buffer);
  } else {
    png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  return PNG.sync.write(png, { colorType: channels === 1 ? 0 : 2, inputColorType: channels === 1 ? 0 : 2, bitDepth: data instanceof Uint16Array ? 16 : 8, inputHasAlpha: false });
}

function writePlan(plan: ConversionPlan, outDir: string, stem: string, freeText: string[] = []): string[] {
  const written: string[] = [];
  const w = (name: string, bytes: Uint8Array | Buffer | string) => {
    fs.writeFileSync(path.join(outDir, name), bytes);
    written.push(name);
  };
  const { display } = plan;
  w(`${stem}.png`, pngBytes(display.width, display.height, display.channels, display.data));
  if (plan.modality?.kind === 'png16') w(`${stem}.modality.png`, pngBytes(plan.modality.width, plan.modality.height, 1, plan.modality.data));
  else if (plan.modality?.kind === 'npy') w(`${stem}.modality.npy`, encodeNpyFloat32(plan.modality.data, [plan.modality.height, plan.modality.width]));
  plan.sidecar.outputs = [...written, `${stem}.json`];
  w(`${stem}.json`, scrubValues(JSON.stringify(plan.sidecar, null, 1), freeText) + '\n');
  return written;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const files = expand(args.inputs);
  const used = new Set<string>();
  let converted = 0;
  let refused = 0;
  for (const { file, rel } of files) {
    // Output stem: the path below the input, flattened; made unique within this run.
    let stem = rel.replace(/\.(dcm|dicom|png|jpe?g)$/i, '').split(path.sep).join('__') || 'image';
    for (let k = 2; used.has(stem); k++) stem = `${stem}-${k}`;
    try {
      const bytes = readInputFile(file); // size checked before the read
      const first = await decodeImageFileNode(bytes);
      const frames = first.dicom?.frames ?? 1;
      const todo = args.allFrames ? Array.from({ length: frames }, (_, i) => i) : [0];
      for (const f of todo) {
        const img = f === 0 ? first : await decodeImageFileNode(bytes, { frame: f });
        const s = args.allFrames && frames > 1 ? `${stem}.f${String(f + 1).padStart(4, '0')}` : stem;
        // Without --keep-phi: no input path (folder and file names often carry names or IDs) and no free text.
        const plan = args.keepPhi ? planConversion(img, { keepPhi: true, source: file }) : planConversion(withoutFreeText(img));
        if (!args.allFrames && frames > 1) (plan.sidecar.notes as string[]).push(`frame 1 of ${frames} written; --all-frames writes every frame`);
        writePlan(plan, args.out, s, args.keepPhi ? [] : freeTextValues(img));
      }
      used.add(stem);
      converted++;
      log(`${file} -> ${stem}.png${first.dicom ? ` (${first.display})` : ''}`);
    } catch (e) {
      refused++;
      const msg = isImageDecodeError(e) ? e.message : e instanceof Error ? e.message : String(e);
      log(`${file}: ${msg}`);
    }
  }
  log(`convert: ${converted} converted, ${refused} refused, into ${args.out}`);
  return converted > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    log(`convert: error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
