/** `npm run label` command line: the options, their defaults and checks (app/cli/label.ts runs them). */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LabelArgs {
  dir: string;
  model: string;
  out: string;
  modelsDir: string;
  batch: number;
  threads: number;
  dtype: 'fp32' | 'int8' | 'fp16';
  truth?: string;
  clip?: string;
  /** A prompts file ({LABEL: [prompt, ...]}); implies --clip (the default CLIP model when --clip is not given). */
  prompts?: string;
  threshold?: number;
  limit?: number;
  embeddingsOut?: string;
  /** Continue a stopped run from its progress file instead of starting over. */
  resume: boolean;
  /** Hub base URL for `hf:owner/name` models (--hub, else $CXR_HUB_BASE, else https://huggingface.co). */
  hubBase?: string;
}

export const HELP = `usage: npm run label -- DIR|FILE.zip [--model pneumonia-vit|hf:OWNER/NAME[@REV]] [--out labeled_dataset.csv] [--models-dir public/models]
       [--batch 16] [--threads N] [--dtype fp32|int8|fp16] [--truth labels.csv] [--clip MODEL_ID] [--prompts FILE.json]
       [--threshold T] [--limit N] [--embeddings-out embeddings.json] [--resume] [--hub URL]
  hf:OWNER/NAME[@REV] (--model, --clip): a Hub repo in the transformers.js ONNX layout, read from --hub (a mirror) or
  https://huggingface.co; its files are cached under $CXR_HUB_CACHE (default ~/.cache/cxr-studio/hub), sha256-checked.`;

function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** Parse argv (without node and the script). Throws an Error naming the bad option; prints help and exits on -h. */
export function parseLabelArgs(argv: string[]): LabelArgs {
  const a: Partial<LabelArgs> = {};
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const num = (k: string, x: string) => {
    const n = Number(x);
    if (!Number.isFinite(n)) throw new Error(`${k} needs a number, got '${x}'`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    switch (k) {
      case '--model': a.model = v(); break;
      case '--out': a.out = v(); break;
      case '--models-dir': a.modelsDir = v(); break;
      case '--batch': a.batch = num(k, v()); break;
      case '--threads': a.threads = num(k, v()); break;
      case '--dtype': {
        const d = v();
        if (d !== 'fp32' && d !== 'int8' && d !== 'fp16') throw new Error(`--dtype must be fp32, int8 or fp16, got '${d}'`);
        a.dtype = d;
        break;
      }
      case '--truth': a.truth = v(); break;
      case '--clip': a.clip = v(); break;
      case '--prompts': a.prompts = v(); break;
      case '--threshold': a.threshold = num(k, v()); break;
      case '--limit': a.limit = num(k, v()); break;
      case '--embeddings-out': a.embeddingsOut = v(); break;
      case '--resume': a.resume = true; break;
      case '--hub': a.hubBase = v(); break;
      case '-h': case '--help': process.stdout.write(HELP + '\n'); process.exit(0);
      // falls through (process.exit never returns)
      default:
        if (k.startsWith('--')) throw new Error(`unknown option ${k}\n${HELP}`);
        if (a.dir) throw new Error(`only one DIR, got ${a.dir} and ${k}`);
        a.dir = k;
    }
  }
  if (!a.dir) throw new Error(`DIR is required\n${HELP}`);
  const batch = a.batch ?? 16;
  if (!(Number.isInteger(batch) && batch >= 1)) throw new Error('--batch must be a positive integer');
  if (a.threshold != null && !(a.threshold >= 0 && a.threshold <= 1)) throw new Error('--threshold must be between 0 and 1');
  return {
    dir: path.resolve(a.dir),
    model: a.model ?? 'pneumonia-vit',
    out: path.resolve(a.out ?? 'labeled_dataset.csv'),
    modelsDir: path.resolve(a.modelsDir ?? path.join(repoRoot(), 'public', 'models')),
    batch,
    threads: a.threads ?? Math.max(1, Math.min(4, cores)),
    dtype: a.dtype ?? 'fp32',
    truth: a.truth,
    clip: a.clip,
    prompts: a.prompts ? path.resolve(a.prompts) : undefined,
    threshold: a.threshold,
    limit: a.limit,
    embeddingsOut: a.embeddingsOut ? path.resolve(a.embeddingsOut) : undefined,
    resume: !!a.resume,
    hubBase: a.hubBase ?? (process.env.CXR_HUB_BASE || undefined),
  };
}
