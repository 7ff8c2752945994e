/**
 * Batch-label a folder of chest X-rays in Node with the same decoding, preprocessing and post-processing modules as
 * the app, and onnxruntime-web's Node build (wasm backend).
 *
 *   npm run label -- DIR|FILE.zip [--model pneumonia-vit] [--out labeled_dataset.csv] [--models-dir public/models]
 *                        [--batch 16] [--threads N] [--dtype fp32|int8] [--truth labels.csv] [--clip MODEL_ID]
 *                        [--threshold T] [--limit N] [--embeddings-out embeddings.json]
 *
 * - Walks DIR recursively (symlinks followed) for PNG/JPEG/DICOM, detected from the bytes, not the extension.
 * - Ground truth: a directory segment equal to one of the model's labels (NORMAL/PNEUMONIA, case-insensitive), or
 *   --truth CSV (image_id|path|filename + label columns).
 * - auto_label: zero-shot CLIP label when --clip is given; otherwise the classifier's prediction at the manifest's
 *   card.threshold (or --threshold), with confidence_score = probability of that label.
 * - A .zip instead of DIR is read entry by entry; entries it cannot inflate (Deflate64, bzip2...) are skipped and named.
 * - Writes labeled_dataset.csv (image_id,auto_label,ground_truth,confidence_score,classifier_prediction,
 *   classifier_probability,ood_score,ood), logs progress to stderr, and prints the metrics JSON as the LAST line of stdout:
 *   {accuracy, precision, recall, specificity, f1, auc, ece, ece_top_label, confusion, threshold, n, images_per_second, ...}.
 *   ece: 15 equal-width bins on P(positive); ece_top_label: on the predicted class's confidence (the model card's ece_15).
 *   images_per_second counts decode + preprocess + inference (model loading excluded).
 *   precision_at_5: label agreement of the 5 nearest neighbours (cosine on the classifier's penultimate `embedding`,
 *   self excluded) over the rows with ground truth; clip_precision_at_5: the same on CLIP image embeddings (--clip).
 *   ood_score / ood: the classifier's out-of-distribution score and verdict (app/lib/classify/ood.ts; empty when the
 *   model variant ships no ood.json); the fraction flagged is printed (`ood flagged: ...`) and in the JSON as
 *   ood_flagged_fraction, ood_flagged, ood_threshold.
 *   --embeddings-out writes {image_ids, classifier: {dim, data}, clip?: {dim, data}} (rows in CSV order) as JSON.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isImageDecodeError, sniffFormat } from '../lib/imaging';
import type { Raster } from '../lib/imaging/raster';
import { findModel, parseManifest } from '../lib/models/manifest';
import type { ModelEntry } from '../lib/models/manifest-types';
import { positiveIndex } from '../lib/classify/postprocess';
import { classifierThreshold } from '../lib/classify/pipeline';
import { createClassifierEngine, type ClassifierEngine } from '../lib/classify/engine';
import { createClipEngine, type ClipEngine } from '../lib/clip/engine';
import type { PromptSet } from '../lib/clip/types';
import { groundTruthFromCsv, labelFromPath, type GroundTruthTable } from '../lib/batch/ground-truth';
import { labeledDatasetMetadata, metadataFileName, toLabeledDatasetCsv, type LabeledRow } from '../lib/batch/csv';
import { blobSource, isJunkEntry, listZip, readZipEntry } from '../lib/batch/zip';
import { summarizeBatch } from '../lib/batch/summary';
import { precisionAtK } from '../lib/embeddings';
import type { ModelRequest } from '../lib/runtime/outcome';
import { decodeImageFileNode } from '../platform/node/decode';
import { nodeModelFiles } from '../platform/node/model-files';
import { nodeOrtHost, nodePlanInputs } from '../platform/node/ort';
import { InferenceService } from '../services/inference';

interface Args {
  dir: string;
  model: string;
  out: string;
  modelsDir: string;
  batch: number;
  threads: number;
  dtype: 'fp32' | 'int8' | 'fp16';
  truth?: string;
  clip?: string;
  threshold?: number;
  limit?: number;
  embeddingsOut?: string;
}

const HELP = `usage: npm run label -- DIR [--model pneumonia-vit] [--out labeled_dataset.csv] [--models-dir public/models]
       [--batch 16] [--threads N] [--dtype fp32|int8] [--truth labels.csv] [--clip MODEL_ID] [--threshold T] [--limit N]
       [--embeddings-out embeddings.json]`;

function repoRoot(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
}

function parseArgs(argv: string[]): Args {
  const a: Partial<Args> = {};
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
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
      case '--batch': a.batch = Number(v()); break;
      case '--threads': a.threads = Number(v()); break;
      case '--dtype': a.dtype = v() as Args['dtype']; break;
      case '--truth': a.truth = v(); break;
      case '--clip': a.clip = v(); break;
      case '--threshold': a.threshold = Number(v()); break;
      case '--limit': a.limit = Number(v()); break;
      case '--embeddings-out': a.embeddingsOut = v(); break;
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
    threshold: a.threshold,
    limit: a.limit,
    embeddingsOut: a.embeddingsOut ? path.resolve(a.embeddingsOut) : undefined,
  };
}

const log = (msg: string) => process.stderr.write(msg + '\n');

/** Files under dir (symlinks followed, hidden entries skipped), sorted. */
function walk(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const rec = (d: string) => {
    const real = fs.realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of fs.readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const p = path.join(d, name);
      const st = fs.statSync(p);
      if (st.isDirectory()) rec(p);
      else if (st.isFile()) out.push(p);
    }
  };
  rec(dir);
  return out;
}

/** The CLIP model's prompt sets: config.default_prompts ({label: [prompts]}), at least two labels. */
function clipPromptSets(entry: ModelEntry): PromptSet[] {
  const prompts = (entry.config ?? {}).default_prompts as Record<string, string[]> | undefined;
  if (!prompts || Object.keys(prompts).length < 2) throw new Error(`CLIP model '${entry.id}' has no config.default_prompts`);
  return Object.entries(prompts).map(([label, texts]) => ({ label, prompts: [...texts] }));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const manifestPath = path.join(args.modelsDir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) throw new Error(`No model manifest at ${manifestPath} (export the models first, or pass --models-dir)`);
  const manifest = parseManifest(JSON.parse(fs.readFileSync(manifestPath, 'utf8')));
  const entry = findModel(manifest, args.model);
  if (!entry) throw new Error(`Model '${args.model}' is not in ${manifestPath} (have: ${manifest.models.map((m) => m.id).join(', ')})`);
  if (entry.family !== 'classifier') throw new Error(`Model '${args.model}' is a ${entry.family}, not a classifier`);
  const clipEntry = args.clip ? findModel(manifest, args.clip) : undefined;
  if (args.clip && (!clipEntry || clipEntry.family !== 'clip')) throw new Error(`No CLIP model '${args.clip}' in the manifest`);
  const prompts = clipEntry ? clipPromptSets(clipEntry) : [];
  const labels = entry.labels!;
  const threshold = args.threshold ?? classifierThreshold(entry);
  const truthTable: GroundTruthTable | null = args.truth ? groundTruthFromCsv(fs.readFileSync(args.truth, 'utf8'), labels) : null;

  // The same service and engines as the app, with Node's adapters: files verified on disk, ORT's Node build (WASM).
  const nodeOpts = { modelsDir: args.modelsDir, threads: args.threads, preferDtype: args.dtype };
  const host = nodeOrtHost(nodeOpts);
  const inference = new InferenceService({
    files: nodeModelFiles(args.modelsDir),
    planInputs: nodePlanInputs(nodeOpts),
    engines: { classifier: createClassifierEngine(host), clip: createClipEngine(host) },
  });
  const source = { kind: 'local' as const, files: new Map<string, Blob>(), name: args.modelsDir };
  const req: ModelRequest = { entry, override: 'wasm', source };
  const clipReq: ModelRequest | null = clipEntry ? { entry: clipEntry, override: 'wasm', source } : null;

  const tLoad = performance.now();
  const report = await inference.ensureSession(req);
  if (clipReq) await inference.ensureSession(clipReq);
  log(`loaded ${entry.id} (${report.dtype}, weights: ${entry.weights}) ${clipEntry ? `+ ${clipEntry.id} ` : ''}in ${((performance.now() - tLoad) / 1000).toFixed(1)} s; wasm threads ${args.threads}; threshold ${threshold}`);

  // DIR, or a .zip read entry by entry (central directory first; unreadable entries skipped with the reason).
  const skipped: { file: string; reason: string }[] = [];
  let files: { rel: string; read(): Promise<Uint8Array> }[];
  if (/\.zip$/i.test(args.dir) && fs.statSync(args.dir).isFile()) {
    const src = blobSource(await fs.openAsBlob(args.dir));
    const listing = await listZip(src);
    for (const s of listing.skipped) {
      skipped.push({ file: s.path, reason: s.reason });
      log(`skip ${s.path}: ${s.reason}`);
    }
    files = listing.entries.map((e) => ({ rel: e.path, read: () => readZipEntry(src, e) }));
  } else {
    files = walk(args.dir).map((f) => ({
      rel: path.relative(args.dir, f).split(path.sep).join('/'),
      read: async () => {
        const buf = fs.readFileSync(f);
        return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      },
    }));
  }
  files = files.filter((f) => !isJunkEntry(f.rel));
  if (args.limit) files = files.slice(0, args.limit);
  log(`${files.length} files in ${args.dir}`);

  const rows: LabeledRow[] = [];
  let oodThreshold: number | undefined;
  /** Per row of `rows` (same order): classifier penultimate embedding and CLIP image embedding. */
  const clsEmbeds: (Float32Array | undefined)[] = [];
  const clipEmbeds: (Float32Array | undefined)[] = [];
  const pos = positiveIndex(labels);
  const t0 = performance.now();
  let done = 0;
  for (let start = 0; start < files.length; start += args.batch) {
    const chunk = files.slice(start, start + args.batch);
    const rasters: Raster[] = [];
    const ids: string[] = [];
    for (const f of chunk) {
      const rel = f.rel;
      let bytes: Uint8Array;
      try {
        bytes = await f.read();
      } catch (e) {
        skipped.push({ file: rel, reason: `unreadable: ${e instanceof Error ? e.message : String(e)}` });
        log(`skip ${rel}: ${skipped.at(-1)!.reason}`);
        continue;
      }
      if (!sniffFormat(bytes)) {
        skipped.push({ file: rel, reason: 'not an image' });
        continue;
      }
      try {
        const d = await decodeImageFileNode(bytes);
        rasters.push(d.raster);
        ids.push(rel);
      } catch (e) {
        skipped.push({ file: rel, reason: isImageDecodeError(e) ? `${e.code}: ${e.message}` : String(e) });
        log(`skip ${rel}: ${skipped.at(-1)!.reason}`);
      }
    }
    if (rasters.length === 0) continue;
    const { results } = await inference.run(req, (e: ClassifierEngine) => e.classify(req, rasters, { heatmap: false, threshold }));
    const zs = clipReq ? (await inference.run(clipReq, (e: ClipEngine) => e.zeroShot(clipReq, rasters, prompts))).results : null;
    results.forEach((r, i) => {
      const gt = truthTable ? truthTable.lookup(ids[i]) : labelFromPath(ids[i], labels);
      rows.push({
        image_id: ids[i],
        auto_label: zs ? zs[i].autoLabel : r.predicted,
        ground_truth: gt ?? '',
        confidence_score: zs ? zs[i].confidence : r.confidence,
        classifier_prediction: r.predicted,
        classifier_probability: r.positiveProbability!,
        ood_score: r.ood?.score ?? null,
        ood: r.ood ? r.ood.ood : null,
      });
      if (r.ood) oodThreshold = r.ood.threshold;
      clsEmbeds.push(r.embedding);
      clipEmbeds.push(zs ? zs[i].imageEmbedding : undefined);
    });
    done += chunk.length;
    const el = (performance.now() - t0) / 1000;
    log(`[${done}/${files.length}] ${(rows.length / el).toFixed(1)} img/s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  fs.writeFileSync(args.out, toLabeledDatasetCsv(rows));
  // Sidecar: the one threshold every classifier column of the CSV was computed at.
  const binary = labels.length === 2;
  const meta = labeledDatasetMetadata({
    file: path.basename(args.out),
    threshold: binary ? threshold : null,
    threshold_source: !binary ? 'argmax (multi-class)' : args.threshold != null ? 'command line' : typeof entry.card.threshold === 'number' ? 'model card' : 'default 0.5',
    positive_label: binary ? labels[pos] : null,
    labels,
    classifier: { id: entry.id, weights: entry.weights, dtype: report.dtype },
    auto_label_source: clipEntry ? `zero-shot ${clipEntry.id}` : `classifier ${entry.id} at the threshold`,
    n_rows: rows.length,
  });
  fs.writeFileSync(path.join(path.dirname(args.out), metadataFileName(path.basename(args.out))), JSON.stringify(meta, null, 2) + '\n');
  const ips = rows.length / seconds;
  log(`wrote ${rows.length} rows to ${args.out}; ${skipped.length} skipped; ${ips.toFixed(1)} images/second`);
  process.stdout.write(`images/second: ${ips.toFixed(2)}\n`);
  const scored = rows.filter((r) => r.ood != null);
  const flagged = scored.filter((r) => r.ood).length;
  process.stdout.write(
    scored.length
      ? `ood flagged: ${flagged} / ${scored.length} (${((100 * flagged) / scored.length).toFixed(1)}%) above threshold ${oodThreshold?.toFixed(3)}\n`
      : `ood flagged: n/a (${entry.id} ${report.dtype} ships no OOD statistics)\n`,
  );

  const summary = summarizeBatch(rows, labels[pos], labels[1 - pos], threshold);
  const rep = summary.classifier ?? null;
  const knownIdx = rows.map((r, i) => (r.ground_truth === labels[pos] || r.ground_truth === labels[1 - pos] ? i : -1)).filter((i) => i >= 0);
  const pAt5 = (embeds: (Float32Array | undefined)[]) => precisionAt5(knownIdx.map((i) => embeds[i]), knownIdx.map((i) => String(rows[i].ground_truth)));
  if (args.embeddingsOut) {
    const pack = (embeds: (Float32Array | undefined)[]) => {
      const dim = embeds.find((e) => e)?.length ?? 0;
      return dim && embeds.every((e) => e?.length === dim) ? { dim, data: embeds.flatMap((e) => Array.from(e!)) } : null;
    };
    fs.writeFileSync(args.embeddingsOut, JSON.stringify({ image_ids: rows.map((r) => r.image_id), classifier: pack(clsEmbeds), clip: clipEntry ? pack(clipEmbeds) : null }));
  }
  const metrics = {
    model: entry.id,
    dtype: report.dtype,
    weights: entry.weights,
    accuracy: rep?.accuracy ?? null,
    precision: rep?.precision ?? null,
    recall: rep?.recall ?? null,
    specificity: rep?.specificity ?? null,
    f1: rep?.f1 ?? null,
    auc: rep && Number.isFinite(rep.auc) ? rep.auc : null,
    ece: rep?.ece ?? null,
    ece_top_label: rep?.eceTopLabel ?? null,
    confusion: rep?.confusion ?? null,
    threshold,
    positive_label: labels[pos],
    n: rows.length,
    n_with_ground_truth: summary.nWithTruth,
    skipped: skipped.length,
    auto_label_source: clipEntry ? clipEntry.id : 'classifier',
    auto_label_accuracy: summary.autoLabelAccuracy ?? null,
    precision_at_5: pAt5(clsEmbeds),
    ...(clipEntry ? { clip_precision_at_5: pAt5(clipEmbeds) } : {}),
    ood_flagged: scored.length ? flagged : null,
    ood_flagged_fraction: scored.length ? flagged / scored.length : null,
    ood_threshold: oodThreshold ?? null,
    images_per_second: ips,
    seconds,
    threads: args.threads,
    batch: args.batch,
    out: args.out,
  };
  await inference.release();
  process.stdout.write(JSON.stringify(metrics) + '\n');
}

/** precision@5 of ground-truth label agreement (cosine kNN, self excluded); null without ≥2 rows all embedded. */
function precisionAt5(embeds: (Float32Array | undefined)[], truth: string[]): number | null {
  if (embeds.length < 2) return null;
  const dim = embeds[0]?.length ?? 0;
  if (!dim || !embeds.every((e) => e?.length === dim)) return null;
  const m = new Float32Array(embeds.length * dim);
  embeds.forEach((e, i) => m.set(e!, i * dim));
  const v = precisionAtK(m, dim, truth, 5);
  return Number.isFinite(v) ? v : null;
}

main().catch((e) => {
  log(`label: error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
