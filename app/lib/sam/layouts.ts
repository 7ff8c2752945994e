/**
 * The three SAM ONNX interfaces the app runs, told apart by their graphs' input and output names, and the decoder
 * feeds / outputs of each. No onnxruntime import: feeds are plain typed arrays with dims, wrapped by the worker.
 *
 *   'cxr'               export-scripts' own layout (cxr_export/sam.py): prompt_decoder(image_embeddings
 *                       [+ high_res_feats_0/1], point_coords [1,N,2], point_labels [1,N], mask_input [1,1,m,m],
 *                       has_mask_input [1]) → masks_low_res [1,M,m,m], iou_predictions [1,M]
 *   'segment-anything'  Meta's segment_anything/utils/onnx.py SamOnnxModel (scripts/export_onnx_model.py,
 *                       samexporter): the same inputs + orig_im_size [2] (H, W) → masks [1,M,H,W] (logits at the
 *                       original size), iou_predictions [1,M], low_res_masks [1,M,m,m]; M = 4 unless exported with
 *                       --return-single-mask: mask 0 is the single-mask token, 1..3 the multimask outputs.
 *   'transformers.js'   Optimum / Xenova SAM repos (onnx/prompt_encoder_mask_decoder.onnx): input_points
 *                       [1,1,N,2] float32, input_labels [1,1,N] int64, image_embeddings,
 *                       image_positional_embeddings (from onnx/vision_encoder.onnx) [, input_boxes [1,1,4]]
 *                       → iou_scores [1,1,3], pred_masks [1,1,3,m,m]. The graph appends the padding point itself.
 *
 * Point convention (all three): coordinates in pixels of the S×S frame; the graph adds 0.5 (pixel centres).
 * Labels: 1 foreground, 0 background, −1 padding point (0,0), 2/3 box top-left / bottom-right corners.
 */
import { toFrame, type FrameGeometry } from './geometry';

export type SamLayout = 'cxr' | 'segment-anything' | 'transformers.js';

export interface GraphIO {
  inputs: readonly string[];
  outputs: readonly string[];
}

export interface SamInterface {
  layout: SamLayout;
  /** The encoder's image input name (pixel_values | input_image | image). */
  encoderInput: string;
  /** Encoder outputs the decoder takes, by name (image_embeddings last for 'cxr' with SAM2 features). */
  features: string[];
  supportsBox: boolean;
  supportsMaskInput: boolean;
  /** When the caller appends SAM's padding point; 'graph' when the decoder does it itself. */
  paddingPoint: 'when-no-box' | 'always' | 'graph';
}

/** A graph whose inputs/outputs are not one of the SAM layouts; the message names what is missing. */
export class SamInterfaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamInterfaceError';
  }
}

/** A prompt this graph cannot take (e.g. a box on a points-only transformers.js export). */
export class SamPromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SamPromptError';
  }
}

const ENCODER_INPUTS = ['pixel_values', 'input_image', 'image'];
const CXR_DEC_IN = ['image_embeddings', 'point_coords', 'point_labels', 'mask_input', 'has_mask_input'];
const CXR_DEC_OUT = ['masks_low_res', 'iou_predictions'];
const SA_DEC_OUT = ['masks', 'iou_predictions', 'low_res_masks'];
const TJS_DEC_IN = ['input_points', 'input_labels', 'image_embeddings', 'image_positional_embeddings'];
const TJS_DEC_OUT = ['iou_scores', 'pred_masks'];

function missing(want: readonly string[], have: readonly string[]): string[] {
  return want.filter((n) => !have.includes(n));
}
function list(names: readonly string[]): string {
  return names.length ? names.join(', ') : 'nothing';
}

/**
 * Which SAM layout a pair of graphs has. `paddingPoint` comes from the manifest (config.append_padding_point: SAM2
 * exports say 'always'); default SAM's 'when-no-box'. Throws SamInterfaceError naming the missing inputs/outputs.
 */
export function detectSamInterface(encoder: GraphIO, decoder: GraphIO, paddingPoint: 'when-no-box' | 'always' = 'when-no-box'): SamInterface {
  const encoderInput = encoder.inputs.find((n) => ENCODER_INPUTS.includes(n)) ?? (encoder.inputs.length === 1 ? encoder.inputs[0] : undefined);
  if (!encoderInput || !encoder.outputs.includes('image_embeddings')) {
    throw new SamInterfaceError(
      `the image encoder is not a SAM image encoder: it takes [${list(encoder.inputs)}] and gives [${list(encoder.outputs)}]; ` +
        `a SAM encoder takes one image (${ENCODER_INPUTS.join(' | ')}) and gives image_embeddings` +
        (encoder.outputs.includes('image_embeddings') ? '' : ' (missing: image_embeddings)'),
    );
  }
  const di = decoder.inputs;
  const dout = decoder.outputs;
  if (di.includes('input_points') || di.includes('image_positional_embeddings')) {
    const mi = missing(TJS_DEC_IN, di);
    const mo = missing(TJS_DEC_OUT, dout);
    if (!encoder.outputs.includes('image_positional_embeddings')) mi.push('image_positional_embeddings (from the vision encoder)');
    if (mi.length || mo.length) {
      throw new SamInterfaceError(
        `the prompt decoder looks like the transformers.js layout but is missing ${[...mi.map((n) => `input ${n}`), ...mo.map((n) => `output ${n}`)].join(', ')}`,
      );
    }
    return {
      layout: 'transformers.js',
      encoderInput,
      features: ['image_embeddings', 'image_positional_embeddings'],
      supportsBox: di.includes('input_boxes'),
      supportsMaskInput: di.includes('input_masks'),
      paddingPoint: 'graph',
    };
  }
  const mi = missing(CXR_DEC_IN, di);
  const highRes = encoder.outputs.filter((n) => n.startsWith('high_res_feats'));
  const miHigh = missing(highRes, di);
  if (di.includes('orig_im_size')) {
    const mo = missing(SA_DEC_OUT, dout);
    if (mi.length || mo.length) {
      throw new SamInterfaceError(
        `the prompt decoder looks like segment-anything's ONNX layout (it takes orig_im_size) but is missing ${[...mi.map((n) => `input ${n}`), ...mo.map((n) => `output ${n}`)].join(', ')}`,
      );
    }
    return { layout: 'segment-anything', encoderInput, features: [...highRes, 'image_embeddings'], supportsBox: true, supportsMaskInput: true, paddingPoint };
  }
  const mo = missing(CXR_DEC_OUT, dout);
  if (mi.length || mo.length || miHigh.length) {
    throw new SamInterfaceError(
      `the prompt decoder has no SAM decoder interface: it takes [${list(di)}] and gives [${list(dout)}]. ` +
        `Missing ${[...mi, ...miHigh].map((n) => `input ${n}`).concat(mo.map((n) => `output ${n}`)).join(', ')} ` +
        `(export-scripts' layout; segment-anything's adds orig_im_size → masks, iou_predictions, low_res_masks; ` +
        `transformers.js' takes ${TJS_DEC_IN.join(', ')} → ${TJS_DEC_OUT.join(', ')})`,
    );
  }
  return { layout: 'cxr', encoderInput, features: [...highRes, 'image_embeddings'], supportsBox: true, supportsMaskInput: true, paddingPoint };
}

export interface PromptPoint {
  /** Original image pixels. */
  x: number;
  y: number;
  /** 1 foreground (positive click), 0 background (negative click). */
  label: 0 | 1;
}

export interface SamPrompt {
  points: PromptPoint[];
  /** [x0, y0, x1, y1] in original image pixels. */
  box?: [number, number, number, number];
  /** Previous low-res logits (m×m) for refinement. */
  maskInput?: Float32Array;
}

export interface FeedTensor {
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/** Point coordinates and labels in SAM's ONNX convention ('cxr' and 'segment-anything'). */
export function samPointArrays(prompt: SamPrompt, g: FrameGeometry, paddingPoint: 'when-no-box' | 'always'): { coords: Float32Array; labels: Float32Array; n: number } {
  const pts: [number, number, number][] = prompt.points.map((p) => [...toFrame(g, p.x, p.y), p.label]);
  const box: [number, number, number][] = [];
  if (prompt.box) {
    const [x0, y0, x1, y1] = prompt.box;
    box.push([...toFrame(g, Math.min(x0, x1), Math.min(y0, y1)), 2], [...toFrame(g, Math.max(x0, x1), Math.max(y0, y1)), 3]);
  }
  // SAM (predictor and ONNX example): points, then the box corners; a padding point only without a box.
  // SAM2's predictor: box corners first, then the points, and always the padding point.
  const all = paddingPoint === 'always' ? [...box, ...pts] : [...pts, ...box];
  if (!prompt.box || paddingPoint === 'always') all.push([0, 0, -1]);
  const coords = new Float32Array(all.length * 2);
  const labels = new Float32Array(all.length);
  all.forEach(([x, y, l], i) => {
    coords[2 * i] = x;
    coords[2 * i + 1] = y;
    labels[i] = l;
  });
  return { coords, labels, n: all.length };
}

/**
 * Decoder feeds without the image features (the worker adds those from the cached embedding).
 * `maskSize` is m (4× the embedding side). Throws SamPromptError for a prompt this interface cannot take.
 */
export function decoderPromptFeeds(itf: SamInterface, prompt: SamPrompt, g: FrameGeometry, maskSize: number): Record<string, FeedTensor> {
  if (!prompt.points.length && !prompt.box) throw new SamPromptError('no prompt: click on the image or drag a box');
  if (prompt.box && !itf.supportsBox) throw new SamPromptError('this transformers.js export takes no box prompt (its decoder has no input_boxes): use clicks');
  if (itf.layout === 'transformers.js') {
    if (!prompt.points.length) throw new SamPromptError('this transformers.js export needs at least one click');
    const n = prompt.points.length;
    const pts = new Float32Array(n * 2);
    const labels = new BigInt64Array(n);
    prompt.points.forEach((p, i) => {
      const [x, y] = toFrame(g, p.x, p.y);
      pts[2 * i] = x;
      pts[2 * i + 1] = y;
      labels[i] = BigInt(p.label);
    });
    const feeds: Record<string, FeedTensor> = {
      input_points: { type: 'float32', data: pts, dims: [1, 1, n, 2] },
      input_labels: { type: 'int64', data: labels, dims: [1, 1, n] },
    };
    if (itf.supportsBox && prompt.box) {
      const [x0, y0] = toFrame(g, prompt.box[0], prompt.box[1]);
      const [x1, y1] = toFrame(g, prompt.box[2], prompt.box[3]);
      feeds.input_boxes = { type: 'float32', data: Float32Array.of(x0, y0, x1, y1), dims: [1, 1, 4] };
    }
    return feeds;
  }
  const { coords, labels, n } = samPointArrays(prompt, g, itf.paddingPoint === 'always' ? 'always' : 'when-no-box');
  const m = maskSize;
  const has = prompt.maskInput && itf.supportsMaskInput ? 1 : 0;
  if (prompt.maskInput && prompt.maskInput.length !== m * m) throw new RangeError(`mask_input has ${prompt.maskInput.length} values, expected ${m}×${m}`);
  const feeds: Record<string, FeedTensor> = {
    point_coords: { type: 'float32', data: coords, dims: [1, n, 2] },
    point_labels: { type: 'float32', data: labels, dims: [1, n] },
    mask_input: { type: 'float32', data: has ? Float32Array.from(prompt.maskInput!) : new Float32Array(m * m), dims: [1, 1, m, m] },
    has_mask_input: { type: 'float32', data: Float32Array.of(has), dims: [1] },
  };
  if (itf.layout === 'segment-anything') feeds.orig_im_size = { type: 'float32', data: Float32Array.of(g.origH, g.origW), dims: [2] };
  return feeds;
}

export interface DecoderResult {
  /** M low-res logit maps of m×m, concatenated. */
  lowRes: Float32Array;
  maskSize: number;
  /** Predicted IoU per mask. */
  iou: number[];
  /** Logits at the original size (segment-anything graphs upscale themselves), M×H×W. */
  fullRes?: Float32Array;
}

export interface OutputTensor {
  data: Float32Array;
  dims: readonly number[];
}

/**
 * Decoder outputs → the masks to show. `multimask`: SAM's three multimask outputs (for segment-anything graphs
 * with 4 masks: indices 1..3, as SamPredictor does), else the single-mask output (index 0).
 */
export function readDecoderOutputs(itf: SamInterface, out: Record<string, OutputTensor>, multimask = true): DecoderResult {
  const pick = (low: OutputTensor, iou: OutputTensor, full?: OutputTensor): DecoderResult => {
    const M = Number(low.dims[low.dims.length - 3]);
    const m = Number(low.dims[low.dims.length - 1]);
    let idx = [...Array(M).keys()];
    if (M === 4) idx = multimask ? [1, 2, 3] : [0];
    const lowRes = new Float32Array(idx.length * m * m);
    idx.forEach((k, j) => lowRes.set(low.data.subarray(k * m * m, (k + 1) * m * m), j * m * m));
    let fullRes: Float32Array | undefined;
    if (full) {
      const plane = Number(full.dims[2]) * Number(full.dims[3]);
      fullRes = new Float32Array(idx.length * plane);
      idx.forEach((k, j) => fullRes!.set(full.data.subarray(k * plane, (k + 1) * plane), j * plane));
    }
    return { lowRes, maskSize: m, iou: idx.map((k) => iou.data[k]), fullRes };
  };
  const need = (n: string) => {
    const t = out[n];
    if (!t) throw new SamInterfaceError(`the prompt decoder gave no ${n}`);
    return t;
  };
  if (itf.layout === 'transformers.js') return pick(need('pred_masks'), need('iou_scores'));
  // The graph's own full-size `masks` are not used: its exported Resize ops differ from SamPredictor's
  // F.interpolate by up to ~1e-2 in the logits (measured on the fixture), while low_res_masks + upscaleMaskLogits
  // reproduce SamPredictor within 1e-5.
  if (itf.layout === 'segment-anything') return pick(need('low_res_masks'), need('iou_predictions'));
  return pick(need('masks_low_res'), need('iou_predictions'));
}

/** Decoder output names to fetch. */
export function decoderFetches(itf: SamInterface): string[] {
  if (itf.layout === 'transformers.js') return [...TJS_DEC_OUT];
  if (itf.layout === 'segment-anything') return ['iou_predictions', 'low_res_masks'];
  return [...CXR_DEC_OUT];
}
