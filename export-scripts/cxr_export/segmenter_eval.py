"""Export and held-out evaluation of the lung segmenter trained by `cxr-export train-segmenter`.

Export: the trained SamAdapter goes through sam.export_sam (image_encoder.onnx + prompt_decoder.onnx, parity vs
PyTorch on seeded inputs), then quantize.quantize adds the fp16 variant (float16 compute, float32 I/O).
Evaluation, with ONNX Runtime on the exported graphs, on the held-out images only (the split of the checkpoint):
each lung with (a) its radiologist box and (b) one positive click at the box centre; of the 3 multimask outputs the
one with the highest predicted IoU is taken (as the app does); its 256x256 low-res logits are cropped to the resized
image (SAM's postprocess_masks: remove the bottom-right padding), resized bilinearly (align_corners=False) to the
original size and thresholded at 0. Dice and IoU against the lung's mask at full size, pixels labelled 127 ignored.
The per-image results are written as a golden (tests/goldens/lung-sam/heldout.json) that the app's
`npm run segment-eval` is compared against.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError
from .lung_segmenter import (IMAGENET_MEAN, IMAGENET_STD, LUNGS, dice_iou, load_trained, normalize,
                              preprocess_shape, split_lungs, summarize, to_frame)

PROMPTS = ("box", "centre-click")


def image_prompt(kind: str, box_xyxy, h: int, w: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A prompt in the decoder's convention from a box in image pixels: coords [1,N,2] in the size x size frame
    (SAM's ResizeLongestSide.apply_coords: x * new_w / w, y * new_h / h), labels [1,N].
    box: corners labelled 2, 3, no padding point; centre-click: the box centre labelled 1 + padding point (0,0) -1."""
    nh, nw = preprocess_shape(h, w, size)
    sx, sy = nw / w, nh / h
    x0, y0, x1, y1 = [float(v) for v in box_xyxy]
    if kind == "box":
        c = [[x0 * sx, y0 * sy], [x1 * sx, y1 * sy]]
        lab = [2, 3]
    elif kind == "centre-click":
        c = [[(x0 + x1) / 2 * sx, (y0 + y1) / 2 * sy], [0.0, 0.0]]
        lab = [1, -1]
    else:
        raise ExportError(f"unknown prompt {kind!r}; one of {', '.join(PROMPTS)}")
    return np.array([c], np.float32), np.array([lab], np.float32)


def postprocess(low_res: np.ndarray, h: int, w: int, size: int) -> np.ndarray:
    """[S4,S4] low-res logits (S4 = mask size, here = frame size) -> bool [h,w]: upscale to the frame, crop the
    padding, bilinear (align_corners=False) to the original size, logits > 0 (SAM's postprocess_masks)."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(low_res, np.float32))[None, None]
    if t.shape[-1] != size:
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    nh, nw = preprocess_shape(h, w, size)
    t = t[..., :nh, :nw]
    t = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
    return (t[0, 0] > 0).numpy()


class OrtPair:
    """image_encoder + prompt_decoder sessions (onnxruntime CPU, 1 thread)."""

    def __init__(self, enc_path: Path, dec_path: Path, threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.enc = ort.InferenceSession(str(enc_path), so, providers=["CPUExecutionProvider"])
        self.dec = ort.InferenceSession(str(dec_path), so, providers=["CPUExecutionProvider"])

    def encode(self, pixel_values: np.ndarray) -> np.ndarray:
        return self.enc.run(["image_embeddings"], {"pixel_values": pixel_values})[0]

    def decode(self, emb, coords, labels, mask_size: int):
        feeds = {"image_embeddings": emb, "point_coords": coords, "point_labels": labels,
                 "mask_input": np.zeros((1, 1, mask_size, mask_size), np.float32),
                 "has_mask_input": np.zeros((1,), np.float32)}
        masks, iou = self.dec.run(["masks_low_res", "iou_predictions"], feeds)
        return masks, iou


def read_case(data_dir: Path, name: str, boxes: dict):
    """(gray uint8 [H,W], right bool, left bool, ignore bool) of one image of the cxr-lung-masks layout."""
    from PIL import Image

    img = data_dir / "images" / f"{name}.jpg"
    if not img.exists():
        cands = sorted((data_dir / "images").glob(f"{name}.*"))
        if not cands:
            raise ExportError(f"{data_dir / 'images'}: no image named {name}")
        img = cands[0]
    gray = np.asarray(Image.open(img).convert("L"))
    mask = np.asarray(Image.open(data_dir / "masks" / f"{name}_mask.png").convert("L"))
    right, left, ignore = split_lungs(mask, boxes[name])
    return gray, right, left, ignore


def evaluate(pair: OrtPair, data_dir: Path, names: list[str], size: int, mask_size: int, torch_adapter=None) -> dict:
    """Per-image Dice/IoU per lung and prompt with ONNX Runtime; with torch_adapter also the max abs difference of
    the ONNX logits / IoU predictions against PyTorch on the same inputs. Returns {"images": [...], "parity": {...},
    "seconds": ...}."""
    import torch

    boxes = json.loads((Path(data_dir) / "boxes.json").read_text())
    recs = []
    worst = {"image_embeddings": 0.0, "masks_low_res": 0.0, "iou_predictions": 0.0}
    agree = 0
    total = 0
    t0 = time.time()
    for name in names:
        gray, right, left, ignore = read_case(Path(data_dir), name, boxes)
        h, w = gray.shape
        frame, (nh, nw) = to_frame(gray, size)
        pix = normalize(frame[None], [(nh, nw)]).numpy()
        emb = pair.encode(pix)
        if torch_adapter is not None:
            with torch.no_grad():
                emb_t = torch_adapter.encoder(torch.from_numpy(pix))
            worst["image_embeddings"] = max(worst["image_embeddings"], float(np.abs(emb_t.numpy() - emb).max()))
        rec = {"image": name, "size": [h, w], "lungs": {}}
        for lung, target in zip(LUNGS, (right, left)):
            rec["lungs"][lung] = {"box": [round(float(v), 2) for v in boxes[name][lung]]}
            for kind in PROMPTS:
                coords, labels = image_prompt(kind, boxes[name][lung], h, w, size)
                masks, iou = pair.decode(emb, coords, labels, mask_size)
                k = int(np.argmax(iou[0]))
                pred = postprocess(masks[0, k], h, w, size)
                d, j = dice_iou(pred, target, ignore)
                if torch_adapter is not None:
                    with torch.no_grad():
                        mt, it = torch_adapter.decoder(torch.from_numpy(emb), torch.from_numpy(coords),
                                                       torch.from_numpy(labels),
                                                       torch.zeros(1, 1, mask_size, mask_size), torch.zeros(1))
                    worst["masks_low_res"] = max(worst["masks_low_res"], float(np.abs(mt.numpy() - masks).max()))
                    worst["iou_predictions"] = max(worst["iou_predictions"], float(np.abs(it.numpy() - iou).max()))
                    pt = postprocess(mt.numpy()[0, int(np.argmax(it.numpy()[0]))], h, w, size)
                    agree += int((pt == pred).sum())
                    total += pt.size
                rec["lungs"][lung][kind] = {
                    "point_coords": [[round(float(a), 3), round(float(b), 3)] for a, b in coords[0]],
                    "point_labels": [int(v) for v in labels[0]], "mask_index": k,
                    "iou_predictions": [round(float(v), 4) for v in iou[0]],
                    "dice": round(d, 5), "iou": round(j, 5), "mask_pixels": int(pred.sum())}
        recs.append(rec)
    out = {"images": recs, "seconds": round(time.time() - t0, 1)}
    if torch_adapter is not None:
        out["parity"] = {**worst, "pixel_agreement": agree / max(1, total)}
    return out


def metrics_of(images: list[dict]) -> dict:
    """{prompt: {lung: {dice: summary, iou: summary}}} (summary: mean, median, p10, min, n)."""
    out = {}
    for kind in PROMPTS:
        out[kind] = {}
        for lung in LUNGS:
            out[kind][lung] = {m: summarize([r["lungs"][lung][kind][m] for r in images]) for m in ("dice", "iou")}
    return out


def flat_card_metrics(m: dict, prefix: str = "") -> dict:
    flat = {}
    for kind, per in m.items():
        for lung, mm in per.items():
            for metric, s in mm.items():
                for stat in ("mean", "median", "p10"):
                    flat[f"{prefix}{kind}_{lung}_{metric}_{stat}"] = s[stat]
    return flat


def export_and_evaluate(args: argparse.Namespace) -> dict:
    import torch

    from . import quantize as qz
    from .sam import export_sam

    torch.set_num_threads(max(1, int(args.threads)))
    adapter, info, meta, step = load_trained(args.run_dir)
    info = {**info, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    size, mask_size = info["image_size"], info["mask_size"]
    out_dir = Path(args.out_dir)
    model_id = args.model_id
    n_params = {"image_encoder": sum(p.numel() for p in adapter.encoder.parameters()),
                "prompt_encoder_mask_decoder": sum(p.numel() for p in adapter.decoder.parameters())}
    command = (f"cxr-export train-segmenter --threads {args.threads} --seed {meta['seed']} --steps {meta['steps']} "
               f"--batch {meta['batch']} --lr {meta['lr']:g} --holdout {meta['holdout']:g}"
               + (f" --finetune-steps {meta['finetune_steps']} --finetune-lr {meta['finetune_lr']:g}"
                  if meta.get("finetune_steps") else "")
               + (f" --time-budget-min {args.time_budget_min:g}" if args.time_budget_min else ""))
    entry = export_sam(adapter, info, out_dir, model_id, "trained", atol=1e-4, rtol=1e-4, seed=args.seed,
                       write_manifest=False, source=f"trained by {command}", license_="Apache-2.0",
                       name="Lung SAM (cxr-lung-masks, trained here)")
    entry["config"]["pad_value"] = 0.0
    entry["config"]["pad_after_normalize"] = True
    entry["config"]["grayscale_to_rgb"] = "replicate"
    entry["config"]["prompt_order"] = "clicks first, then box corners (2, 3)"
    entry["config"]["mask_threshold"] = 0.0
    mf.upsert_entry(out_dir, entry)

    data_dir = Path(args.data)
    names = list(meta["eval_names"])
    folder = out_dir / model_id
    pair32 = OrtPair(folder / "image_encoder.onnx", folder / "prompt_decoder.onnx", args.threads)

    # fp16: parity against the fp32 graph on a real held-out image and its box prompt (not random feeds)
    boxes = json.loads((data_dir / "boxes.json").read_text())
    gray0, *_ = read_case(data_dir, names[0], boxes)
    fr0, hw0 = to_frame(gray0, size)
    pix0 = normalize(fr0[None], [hw0]).numpy()
    emb0 = pair32.encode(pix0)
    c0, l0 = image_prompt("box", boxes[names[0]][LUNGS[0]], *gray0.shape, size)

    def feeds_fn(src: Path):
        if src.name.startswith("image_encoder"):
            return {"pixel_values": pix0}
        return {"image_embeddings": emb0, "point_coords": c0, "point_labels": l0,
                "mask_input": np.zeros((1, 1, mask_size, mask_size), np.float32),
                "has_mask_input": np.zeros((1,), np.float32)}

    v16 = qz.quantize(out_dir, model_id, "fp16", feeds_fn=feeds_fn)
    v16["parity"]["reference"] = v16["parity"]["reference"].replace(
        "same seeded input", f"on held-out image {names[0]} and its right_lung box prompt")
    mf.add_variant(out_dir, model_id, "fp16", v16)
    pair16 = OrtPair(folder / "image_encoder.fp16.onnx", folder / "prompt_decoder.fp16.onnx", args.threads)

    ev32 = evaluate(pair32, data_dir, names, size, mask_size, torch_adapter=adapter)
    ev16 = evaluate(pair16, data_dir, names, size, mask_size)
    m32, m16 = metrics_of(ev32["images"]), metrics_of(ev16["images"])
    par = ev32["parity"]

    manifest = mf.load(out_dir)
    entry = next(e for e in manifest["models"] if e["id"] == model_id)
    entry["variants"]["fp32"]["parity"] = mf.parity_record(
        max(par["masks_low_res"], par["iou_predictions"], entry["config"]["parity"]["prompt_decoder"]),
        f"PyTorch (this model, fp32) on seeded N(0,1) inputs (export check) and on the {len(names)} held-out "
        f"images with box and centre-click prompts: image_embeddings {par['image_embeddings']:.2g}, "
        f"masks_low_res {par['masks_low_res']:.2g}, iou_predictions {par['iou_predictions']:.2g}, "
        f"thresholded mask pixels equal {par['pixel_agreement']:.6f}")
    entry["config"]["parity"] = {**entry["config"]["parity"], "heldout_vs_pytorch": par}
    sizes = {f["path"]: f["bytes"] for v in entry["variants"].values() for f in v["files"]}
    arch = meta["arch"]
    entry["card"] = {
        "summary": ("Promptable lung segmenter with SAM's interface, trained from scratch in this project on "
                    "cxr-lung-masks: a box or clicks on one lung give that lung's mask (right and left lungs are "
                    "separate targets). Not a foundation model: it knows chest X-ray lungs only."),
        "metrics": {
            "dataset": f"cxr-lung-masks held-out split ({len(names)} images, by source; never trained on)",
            "runtime": "onnxruntime CPU, fp32 graphs (fp16_* keys: fp16 graphs)",
            "protocol": ("mask with the highest predicted IoU of the 3; low-res logits cropped to the image, "
                         "bilinear to the original size, > 0; label 127 ignored; box = radiologist box, "
                         "centre-click = one positive click at the box centre"),
            **flat_card_metrics(m32), **flat_card_metrics(m16, "fp16_"),
        },
        "training": {
            "arch": {"image_encoder": (f"residual CNN (widths {list(arch['widths'])}, blocks {list(arch['depths'])}, "
                                       "GroupNorm, ReLU) + top-down FPN to stride 4 + SAM neck LayerNorm2d"),
                     "prompt_encoder_mask_decoder": (f"transformers SamPromptEncoder + SamMaskDecoder, width "
                                                     f"{arch['embed_dim']}, {arch['decoder_layers']} two-way "
                                                     f"layers, {arch['decoder_heads']} heads, 3 multimask outputs"
                                                     + ("; dense prompt maps (inside-the-box map, Gaussian maps of "
                                                        "positive / negative clicks, sigma "
                                                        f"{arch['prompt_maps']['sigma']:g} px) through a 2-layer "
                                                        "conv added to the image embedding inside the decoder graph"
                                                        if arch.get("prompt_maps") else "")),
                     "image_size": size, "embedding": [arch["embed_dim"], size // arch["stride"],
                                                       size // arch["stride"]],
                     "params": n_params, "params_total": sum(n_params.values())},
            "data": ("../shared/data/cxr-lung-masks: 317 of 318 images (one has no right_lung box); per-lung "
                     "targets split from the lung mask by the radiologists' boxes; label 127 ignored in loss and "
                     "metrics"),
            "split": {"rule": f"seeded (seed {meta['seed']}) by source group (paper / case; the figshare set per "
                              f"image), >= {meta['holdout']:.0%} held out", "n_train": meta["n_train"],
                      "n_eval": meta["n_eval"]},
            "prompts": ("per step one layout for all prompts: radiologist box 30%, jittered box 20%, centre click "
                        "15%, 1-3 random positive/negative clicks 15%, box + 1-2 clicks 20%; 20% of steps add a "
                        "refinement pass (previous low-res logits as mask_input + a corrective click)"
                        + (f"; then {meta['finetune_steps']} click-weighted steps (box 20%, jittered box 10%, centre "
                           "click 35%, clicks 25%, box + clicks 10%)" if meta.get("finetune_steps") else "")),
            "loss": ("min over the 3 masks of (BCE + soft Dice) + 0.2 x mean + MSE(IoU head, actual IoU); + 0.5 x "
                     "auxiliary BCE of both lungs from the embedding (1x1 conv, training only)"),
            "augmentation": "scale 0.85-1.15, shift +-8%, horizontal flip, gamma / contrast / brightness",
            "optimizer": f"AdamW lr {meta['lr']:g}, weight decay 1e-4, warmup + cosine over {meta['steps']} steps, "
                         "grad clip 1.0",
            "steps": step, "batch_images": meta["batch"], "seed": meta["seed"],
            "train_seconds": round(float(meta.get("train_seconds", 0.0)), 1), "threads": args.threads,
            "device": "cpu", "command": command,
            "heldout_images": names,
        },
        "intended_use": "Research and teaching demo of interactive segmentation in the browser; not a medical device.",
        "limitations": ("Not for clinical use. 251 training images (adult, mostly COVID-19, some cut from paper "
                        "figures); masks include the lung behind the heart. Prompts far from a lung give "
                        "meaningless masks."),
        "license_note": ("Weights: Apache-2.0 (this project). Training masks CC BY 4.0 (V7 Labs); the images carry "
                         "their own licences (several non-commercial) and are never shipped, only these weights."),
        "files_bytes": sizes,
    }
    mf.save(out_dir, manifest)

    golden = {
        "format": ("images[i]: image (stem in images/), size [H, W], lungs.{right_lung,left_lung}: box (x0,y0,x1,y1 "
                   "image px, boxes.json), then per prompt (box, centre-click): point_coords / point_labels as fed to "
                   "prompt_decoder.onnx (256-frame px), iou_predictions, mask_index (argmax), dice, iou, mask_pixels "
                   "(predicted pixels at full size, ignore pixels included)"),
        "model": model_id, "variant": "fp32", "runtime": "onnxruntime CPU (Python)",
        "data": "../shared/data/cxr-lung-masks", "prompts": list(PROMPTS),
        "protocol": entry["card"]["metrics"]["protocol"], "image_size": size, "mask_size": mask_size,
        "metrics": m32, "metrics_fp16": m16, "parity_vs_pytorch": par, "images": ev32["images"],
    }
    gpath = Path(args.golden)
    gpath.parent.mkdir(parents=True, exist_ok=True)
    gpath.write_text(json.dumps(golden, indent=1) + "\n")
    summary = {"id": model_id, "metrics": m32, "metrics_fp16": m16, "parity": par, "files": sizes,
               "eval_seconds": ev32["seconds"], "golden": str(gpath)}
    print(json.dumps(summary), flush=True)
    return summary
