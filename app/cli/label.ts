/**
 * Batch-label a folder of chest X-rays in Node: argument parsing and file I/O around the same operations as the
 * app's batch view (app/services/batch.ts), through the same InferenceService, engines, sha256-verified model files
 * and variant choice, with onnxruntime-web's Node build (wasm backend).
 *
 *   npm run label -- DIR|FILE.zip [--model pneumonia-vit] [--out labeled_dataset.csv] [--models-dir public/models]
 *                        [--batch 16] [--threads N] [--dtype fp32|int8|fp16] [--truth labels.csv] [--clip MODEL_ID]
 *                        [--prompts FILE.json] [--threshold T] [--limit N] [--embeddings-out embeddings.json] [--resume]
 *
 * - Walks DIR recursively (symlinks followed) for PNG/JPEG/DICOM, detected from the bytes, not the extension.
 * - Ground truth: a directory segment equal to one of the model's labels (NORMAL/PNEUMONIA, case-insensitive), or
 *   --truth CSV (image_id|path|filename + label columns).
 * - auto_label: zero-shot CLIP label when --clip (or --prompts) is given; otherwise the classifier's prediction at
 *   the manifest's card.threshold (or --threshold), with confidence_score = probability of that label.
 * - --prompts FILE.json: prompt sets {LABEL: [prompt, ...]} (the manifest's default_prompts format) for the CLIP
 *   model (--clip, else the manifest's default CLIP model); one zs_<LABEL> column per label holds its zero-shot
 *   probability. A malformed file is refused with a message naming what is wrong.
 * - A .zip instead of DIR is read entry by entry; entries it cannot inflate (Deflate64, bzip2...) are skipped and named.
 * - Writes labeled_dataset.csv as it goes (image_id,auto_label,ground_truth,confidence_score,classifier_prediction,
 *   classifier_probability,ood_score,ood[,zs_<LABEL>...]; text cells neutralised against CSV injection), and
 *   <out>.progress.jsonl; `--resume` continues a stopped run (app/cli/label-progress.ts). Logs progress to stderr
 *   and prints the metrics JSON as the LAST line of stdout (app/lib/batch/summary.ts batchReport): accuracy,
 *   precision, recall, specificity, f1, auc, ece, ece_top_label, confusion (multi-class: accuracy, macro_f1 and the
 *   confusion matrix), zero_shot_accuracy, zero_shot_auc (two prompt labels and ground truth), precision_at_5,
 *   clip_precision_at_5, ood_flagged*, images_per_second (decode + preprocess + inference; model loading excluded).
 *   stderr's `profile {...}` line: per phase of app/lib/batch/timing.ts, chunks, summed ms and summed ORT run ms.
 *   --embeddings-out writes {image_ids, classifier: {dim, data}, clip?: {dim, data}} (rows in CSV order) as JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { groundTruthFromCsv, labelFromPath } from '../lib/batch/ground-truth';
import { metadataFileName } from '../lib/batch/csv';
import { batchSpanSummary } from '../lib/batch/timing';
import { batchLabels, type BatchRow } from '../lib/batch/rows';
import { classifierThreshold } from '../lib/classifier/pipeline';
import { defaultPromptSets } from '../lib/clip/prompts';
import { findModel, parseManifest } from '../lib/models/manifest';
import { defaultModelId } from '../lib/models/default-model';
import type { ModelRequest } from '../lib/runtime/outcome';
import { nodeHubModelFiles } from '../platform/node/hub-files';
import { entrySource } from '../lib/hub/source';
import { resolveHubModel } from '../services/hub';
import { nodeOrtHost, nodePlanInputs } from '../platform/node/ort';
import { batchCsv, batchCsvMetadata, batchDecodeSizes, batchMetricsReport, runBatchChunk, zeroShotLabels, type BatchExportContext, type BatchModels } from '../services/batch';
import { inProcessEngines } from '../services/engines';
import { InferenceService } from '../services/inference';
import { parsePromptSets, withZeroShotScoring } from '../services/clip';
import { parseLabelArgs } from './label-args';
import { decodeForBatchNode, listLabelInputs } from './label-inputs';
import { ProgressWriter, readProgress, type RunIdentity } from './label-progress';

const log = (msg: string) => process.stderr.write(msg + '\n');

async function main() {
  const args = parseLabelArgs(process.argv.slice(2));
  // A malformed prompts file is reported before any model is loaded.
  const promptSets = args.prompts ? parsePromptSets(fs.readFileSync(args.prompts, 'utf8'), args.prompts) : undefined;
  const manifestPath = path.join(args.modelsDir, 'manifest.json');
  if (!fs.existsSync(manifestPath)) throw new Error(`No model manifest at ${manifestPath} (export the models first, or pass --models-dir)`);
  const manifest = parseManifest(JSON.parse(fs.readFileSync(manifestPath, 'utf8')));
  const hubModel = (id: string) => resolveHubModel(id, { hubBase: args.hubBase });
  const entry = args.model.startsWith('hf:') ? await hubModel(args.model) : findModel(manifest, args.model);
  if (!entry) throw new Error(`Model '${args.model}' is not in ${manifestPath} (have: ${manifest.models.map((m) => m.id).join(', ')})`);
  if (entry.family !== 'classifier') throw new Error(`Model '${args.model}' is a ${entry.family}, not a classifier`);
  // --prompts without --clip: the manifest's default CLIP model (defaultModelId: a trained one before a random fixture).
  const clipId = args.clip ?? (args.prompts ? defaultModelId(manifest.models, 'clip') : undefined);
  const clipEntry = clipId?.startsWith('hf:') ? await hubModel(clipId) : clipId ? findModel(manifest, clipId) : undefined;
  if (clipId && (!clipEntry || clipEntry.family !== 'clip')) throw new Error(`No CLIP model '${clipId}' in the manifest`);
  if (args.prompts && !clipEntry) throw new Error(`--prompts needs a CLIP model and ${manifestPath} has none`);
  const prompts = promptSets ?? defaultPromptSets(clipEntry);
  const labels = batchLabels(entry.labels);
  const threshold = args.threshold ?? classifierThreshold(entry);
  const truthTable = args.truth ? groundTruthFromCsv(fs.readFileSync(args.truth, 'utf8'), labels.labels) : null;

  // The same service and engines as the app, with Node's adapters: files verified on disk, ORT's Node build (WASM).
  const nodeOpts = { modelsDir: args.modelsDir, threads: args.threads, preferDtype: args.dtype };
  const inference = new InferenceService({ files: nodeHubModelFiles(args.modelsDir), planInputs: nodePlanInputs(nodeOpts), engines: inProcessEngines(nodeOrtHost(nodeOpts)) });
  const source = { kind: 'local' as const, files: new Map<string, Blob>(), name: args.modelsDir };
  // A Hub model's files come from its repo (cached under $CXR_HUB_CACHE), the others' from the models folder.
  const request = (e: typeof entry): ModelRequest => ({ entry: e, override: 'wasm', source: entrySource(e, source) });
  const models: BatchModels = { classifier: request(entry), clip: clipEntry ? request(clipEntry) : undefined, prompts };
  const zsLabels = zeroShotLabels(models);

  const tLoad = performance.now();
  const report = await inference.ensureSession(models.classifier!);
  if (models.clip) await inference.ensureSession(models.clip);
  log(`loaded ${entry.id} (${report.dtype}, weights: ${entry.weights}) ${clipEntry ? `+ ${clipEntry.id} ` : ''}in ${((performance.now() - tLoad) / 1000).toFixed(1)} s; wasm threads ${args.threads}; threshold ${threshold}`);

  const { inputs: all, skipped, renamed } = await listLabelInputs(args.dir);
  for (const s of skipped) log(`skip ${s.file}: ${s.reason}`);
  for (const r of renamed) log(`renamed ${JSON.stringify(r.storedPath)} -> ${r.file}: ${r.reason}`);
  const inputs = args.limit ? all.slice(0, args.limit) : all;
  log(`${inputs.length} files in ${args.dir}`);

  const identity: RunIdentity = { model: entry.id, dtype: report.dtype, clip: clipEntry?.id ?? null, zero_shot_labels: zsLabels, threshold, dir: args.dir };
  const resumed = args.resume ? readProgress(args.out, identity) : null;
  if (args.resume) log(resumed ? `resuming: ${resumed.length} of ${inputs.length} files already done` : `--resume: no progress file next to ${args.out}; starting from the first file`);
  const rows: BatchRow[] = inputs.map((f, index) => ({
    index,
    imageId: f.rel,
    groundTruth: (truthTable ? truthTable.lookup(f.rel) : labelFromPath(f.rel, labels.labels)) ?? undefined,
    status: 'pending',
  }));
  for (const r of resumed ?? []) {
    if (rows[r.index]?.imageId !== r.imageId) throw new Error(`--resume: file ${r.index + 1} is now ${rows[r.index]?.imageId ?? 'missing'}, the stopped run had ${r.imageId}; the folder changed, start over`);
    rows[r.index] = r;
  }
  const writer = new ProgressWriter(args.out, identity, threshold, labels, zsLabels, rows.filter((r) => r.status !== 'pending'));

  const { sizes } = batchDecodeSizes(models);
  const t0 = performance.now();
  let ran = 0;
  const pending = rows.filter((r) => r.status === 'pending').map((r) => r.index);
  for (let start = 0; start < pending.length; start += args.batch) {
    const chunk = pending.slice(start, start + args.batch);
    const { updates, failures } = await runBatchChunk(inference, models, chunk, (i) => decodeForBatchNode(inputs[i], sizes));
    for (const f of failures) log(`model failure: ${f}`);
    for (const i of chunk) {
      rows[i] = { ...rows[i], ...updates.get(i) };
      if (rows[i].status === 'error') log(`skip ${rows[i].imageId}: ${rows[i].error}`);
    }
    writer.append(chunk.map((i) => rows[i]));
    ran += chunk.length;
    log(`[${rows.length - pending.length + ran}/${rows.length}] ${(ran / ((performance.now() - t0) / 1000)).toFixed(1)} img/s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  writer.finish();

  const ctx: BatchExportContext = {
    threshold,
    thresholdSource: !labels.positive ? 'argmax (multi-class)' : args.threshold != null ? 'command line' : typeof entry.card.threshold === 'number' ? 'model card' : 'default 0.5',
    labels,
    classifier: { id: entry.id, weights: entry.weights, dtype: report.dtype },
    clip: clipEntry ? { id: clipEntry.id } : undefined,
    zeroShotLabels: zsLabels,
    file: path.basename(args.out),
  };
  // The whole file once more from the rows: byte for byte what the app's export writes for them.
  fs.writeFileSync(args.out, batchCsv(rows, ctx));
  // The zero-shot scoring rule and temperature (and, without the learned one, the note saying so) beside the CSV.
  const meta = withZeroShotScoring(batchCsvMetadata(rows, ctx), clipEntry);
  fs.writeFileSync(path.join(path.dirname(args.out), metadataFileName(path.basename(args.out))), JSON.stringify(meta, null, 2) + '\n');
  if (meta.zero_shot_temperature_note) log(`${clipEntry!.id}: ${meta.zero_shot_temperature_note}`);
  const done = rows.filter((r) => r.status === 'done');
  const ips = ran / seconds;
  // Where the chunks' time went (lib/batch/timing.ts spans: decode, classifier, clip with their ORT run ms), on stderr.
  const spans = Object.entries(batchSpanSummary()).map(([k, v]) => [k, { count: v.count, total_ms: Math.round(v.totalMs), ...Object.fromEntries(Object.entries(v.detail).map(([d, x]) => [`${d}_total`, Math.round(x)])) }]);
  log(`profile ${JSON.stringify(Object.fromEntries(spans))}`);
  log(`wrote ${done.length} rows to ${args.out}; ${rows.length - done.length + skipped.length} skipped; ${ips.toFixed(1)} images/second`);
  process.stdout.write(`images/second: ${ips.toFixed(2)}\n`);
  const rep = batchMetricsReport(rows, ctx);
  process.stdout.write(
    rep.ood_flagged != null
      ? `ood flagged: ${rep.ood_flagged} / ${done.filter((r) => r.ood != null).length} (${(100 * rep.ood_flagged_fraction!).toFixed(1)}%) above threshold ${rep.ood_threshold?.toFixed(3)}\n`
      : `ood flagged: n/a (${entry.id} ${report.dtype} ships no OOD statistics)\n`,
  );
  if (args.embeddingsOut) {
    const pack = (key: 'classifierEmbedding' | 'clipEmbedding') => {
      const dim = done[0]?.[key]?.length ?? 0;
      return dim && done.every((r) => r[key]?.length === dim) ? { dim, data: done.flatMap((r) => Array.from(r[key]!)) } : null;
    };
    fs.writeFileSync(args.embeddingsOut, JSON.stringify({ image_ids: done.map((r) => r.imageId), classifier: pack('classifierEmbedding'), clip: clipEntry ? pack('clipEmbedding') : null }));
  }
  const { clip_precision_at_5, ...common } = rep;
  const metrics = {
    ...common,
    ...(clipEntry ? { clip_precision_at_5 } : {}),
    skipped: rep.skipped + skipped.length,
    images_per_second: ips,
    seconds,
    threads: args.threads,
    batch: args.batch,
    resumed_rows: resumed?.length ?? 0,
    out: args.out,
  };
  await inference.release();
  process.stdout.write(JSON.stringify(metrics) + '\n');
}

main().catch((e) => {
  log(`label: error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
