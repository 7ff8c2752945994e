"""The project's own promptable lung segmenter, with SAM's ONNX interface: data, model, prompts, loss, training loop
(the CLI is train_segmenter.py, export and evaluation segmenter_eval.py).

The model is SAM-shaped so the app's segment family runs it like any other `cxr-export sam` export:
  image_encoder.onnx   pixel_values float32 [1,3,256,256] (longest side resized to 256, ImageNet mean/std on the
                       grey value replicated to RGB, zero padding bottom-right after normalisation)
                       -> image_embeddings [1,C,64,64]
  prompt_decoder.onnx  image_embeddings, point_coords [1,N,2] (pixels of the 256 x 256 frame), point_labels [1,N]
                       (1 fg, 0 bg, -1 padding, 2/3 box corners), mask_input [1,1,256,256], has_mask_input [1]
                       -> masks_low_res [1,3,256,256] logits, iou_predictions [1,3]
The image encoder is a small residual CNN with a feature pyramid (stride 4 output, so the low-res masks are
256 x 256 like SAM's); the prompt encoder and mask decoder are transformers' SamPromptEncoder / SamMaskDecoder
(Kirillov et al., "Segment Anything", ICCV 2023) at width C, driven through the same adapter as the exports in
sam.py, so training, export and the app see one prompt convention (segment_anything/utils/onnx.py).

Data: ../shared/data/cxr-lung-masks (images/, masks/*_mask.png with 255 lung, 127 ignore, 0 background,
boxes.json with right_lung / left_lung boxes). Each lung is its own target: a lung pixel belongs to the lung whose
radiologist box holds it (pixels in both or neither boxes: the box whose centre is nearer in x). Split: seeded,
by source (figures of one paper or case stay on one side), >= 20% of the images held out for evaluation only.
Label 127 is ignored in the loss and in every metric. Training prompts: the radiologists' boxes, jittered boxes,
centre clicks, random positive/negative clicks, box + clicks, and a second refinement pass with the previous
low-res mask as mask_input plus a corrective click (as SAM's interactive training does).

Reproducible: every random draw comes from numpy Generators seeded by (seed, step), so a resumed run draws what
an uninterrupted one would; the learning-rate schedule is over --steps, --time-budget-min only stops early (the
next call resumes from the checkpoint in --run-dir).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .errors import ExportError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUNGS = ("right_lung", "left_lung")
IGNORE = 127
DEFAULT_ARCH = dict(image_size=256, stride=4, embed_dim=64, widths=(24, 32, 64, 128, 160), depths=(1, 2, 2, 1),
                    decoder_layers=2, decoder_heads=4, decoder_mlp=256, mask_input_channels=16,
                    prompt_maps={"sigma": 10.0, "tau": 2.0})
TINY_ARCH = dict(image_size=64, stride=4, embed_dim=32, widths=(8, 8, 16, 16, 32), depths=(1, 1, 1, 1),
                 decoder_layers=1, decoder_heads=2, decoder_mlp=64, mask_input_channels=8,
                 prompt_maps={"sigma": 3.0, "tau": 1.0})
# prompt layouts sampled per training step (all prompts of one step share one token count)
LAYOUTS = (("box", 0.30), ("jittered-box", 0.20), ("centre-click", 0.15), ("clicks", 0.15), ("box+clicks", 0.20))
# the click-weighted second phase (--finetune-steps): single clicks are the harder prompt to learn
FINETUNE_LAYOUTS = (("box", 0.20), ("jittered-box", 0.10), ("centre-click", 0.35), ("clicks", 0.25),
                    ("box+clicks", 0.10))


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    from .data import shared_dir

    return shared_dir() / "data" / "cxr-lung-masks"


# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------


def preprocess_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """segment_anything ResizeLongestSide.get_preprocess_shape: the resized (h, w) with longest side `size`."""
    scale = size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def to_frame(gray: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 [H,W] -> uint8 [size,size]: longest side resized to `size` (PIL bilinear, antialiased), zero padding
    bottom-right. Returns (frame, (new_h, new_w))."""
    from PIL import Image

    h, w = gray.shape
    nh, nw = preprocess_shape(h, w, size)
    small = np.asarray(Image.fromarray(gray).resize((nw, nh), Image.BILINEAR))
    frame = np.zeros((size, size), np.uint8)
    frame[:nh, :nw] = small
    return frame, (nh, nw)


def normalize(frames_u8, valid_hw=None):
    """uint8 grey [B,S,S] (numpy or torch) -> float32 torch [B,3,S,S]: grey/255 replicated to RGB, ImageNet
    mean/std, padding (outside valid_hw, a list of (h, w)) set to 0 after normalisation as SAM's processor does."""
    import torch

    x = torch.as_tensor(np.asarray(frames_u8)).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x.unsqueeze(1).expand(-1, 3, -1, -1) - mean) / std
    if valid_hw is not None:
        keep = torch.zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        for i, (h, w) in enumerate(valid_hw):
            keep[i, :, :h, :w] = 1
        x = x * keep
    return x.contiguous()


def split_lungs(mask: np.ndarray, boxes: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mask uint8 [H,W] (255 lung, 127 ignore, 0 background), boxes {right_lung, left_lung: [x0,y0,x1,y1]} ->
    (right bool [H,W], left bool [H,W], ignore bool [H,W]). A lung pixel goes to the lung whose box holds it; in
    both boxes or in neither, to the box whose centre is nearer in x (the lungs lie side by side)."""
    h, w = mask.shape
    lung = mask > 191
    ignore = (mask > 63) & ~lung
    yy, xx = np.mgrid[0:h, 0:w]
    inside = []
    cx = []
    for k in LUNGS:
        x0, y0, x1, y1 = boxes[k]
        inside.append((xx + 0.5 >= x0) & (xx + 0.5 <= x1) & (yy + 0.5 >= y0) & (yy + 0.5 <= y1))
        cx.append((x0 + x1) / 2)
    nearer_right = np.abs(xx + 0.5 - cx[0]) <= np.abs(xx + 0.5 - cx[1])
    right = lung & ((inside[0] & ~inside[1]) | ((inside[0] == inside[1]) & nearer_right))
    left = lung & ~right
    return right, left, ignore


def _resize_float(a: np.ndarray, nh: int, nw: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR))


def source_group(row: dict) -> str:
    """Images of one paper / case share a group (its DOI or page); the figshare collection is one image per
    patient, so there the image itself is the group."""
    key = row.get("doi") or row.get("source_url") or ""
    if not key or "figshare" in key:
        return Path(row["image"]).stem
    return key


def load_dataset(data_dir: Path, size: int = 256, limit: int | None = None, cache: Path | None = None) -> dict:
    """Reads the cxr-lung-masks layout into frames of `size`. Returns dict: names [N], groups [N], frames uint8
    [N,S,S], hw int [N,2] (resized content h, w), orig int [N,2] (H, W), targets uint8 [N,2,S,S] (soft per-lung
    targets x255, order right, left), weights uint8 [N,S,S] (255 = counted, 0 = ignore label), boxes float32
    [N,2,4] (x0,y0,x1,y1 in frame pixels)."""
    from PIL import Image

    data_dir = Path(data_dir)
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        d = {k: z[k] for k in z.files}
        if limit is None or len(d["names"]) <= limit:
            return d
    idx = data_dir / "index.csv"
    if not idx.exists():
        raise ExportError(f"{data_dir}: no index.csv (expected the cxr-lung-masks layout: images/, masks/, "
                          "boxes.json, index.csv)")
    rows = list(csv.DictReader(open(idx)))
    boxes = json.loads((data_dir / "boxes.json").read_text())
    # both lungs need a radiologist box (one image of the set has only left_lung): others are left out
    rows = [r for r in rows if all(k in boxes.get(Path(r["image"]).stem, {}) for k in LUNGS)]
    if limit:
        rows = rows[:limit]
    out = {k: [] for k in ("names", "groups", "frames", "hw", "orig", "targets", "weights", "boxes")}
    for r in rows:
        name = Path(r["image"]).stem
        gray = np.asarray(Image.open(data_dir / r["image"]).convert("L"))
        mask = np.asarray(Image.open(data_dir / r["mask"]).convert("L"))
        if mask.shape != gray.shape:
            raise ExportError(f"{r['mask']}: mask {mask.shape} and image {gray.shape} differ in size")
        h, w = gray.shape
        frame, (nh, nw) = to_frame(gray, size)
        right, left, ignore = split_lungs(mask, boxes[name])
        t = np.zeros((2, size, size), np.uint8)
        wgt = np.zeros((size, size), np.uint8)
        for i, m in enumerate((right, left)):
            t[i, :nh, :nw] = np.clip(_resize_float(m * 255.0, nh, nw) + 0.5, 0, 255).astype(np.uint8)
        wgt[...] = 255
        wgt[:nh, :nw] = np.clip(255.0 - _resize_float(ignore * 255.0, nh, nw) + 0.5, 0, 255).astype(np.uint8)
        scale_x, scale_y = nw / w, nh / h
        b = np.array([[boxes[name][k][0] * scale_x, boxes[name][k][1] * scale_y,
                       boxes[name][k][2] * scale_x, boxes[name][k][3] * scale_y] for k in LUNGS], np.float32)
        out["names"].append(name)
        out["groups"].append(source_group(r))
        out["frames"].append(frame)
        out["hw"].append((nh, nw))
        out["orig"].append((h, w))
        out["targets"].append(t)
        out["weights"].append(wgt)
        out["boxes"].append(b)
    d = {k: np.array(v) for k, v in out.items()}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **d)
    return d


def split_indices(groups, seed: int, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split by source group: groups are shuffled and taken for evaluation until >= holdout of the images
    are held out. Returns (train_idx, eval_idx), each sorted."""
    groups = list(groups)
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    need = math.ceil(holdout * len(groups))
    held: set[str] = set()
    n = 0
    for i in order:
        if n >= need:
            break
        g = uniq[i]
        held.add(g)
        n += groups.count(g)
    ev = np.array([i for i, g in enumerate(groups) if g in held], int)
    tr = np.array([i for i, g in enumerate(groups) if g not in held], int)
    return tr, ev


# ---------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------


def build_model(arch: dict, seed: int = 0):
    """A SamAdapter (sam.py) around transformers' SamModel with its ViT replaced by a small CNN + FPN.
    Returns (adapter, info)."""
    import torch
    from torch import nn
    from transformers import SamConfig, SamModel
    from transformers.models.sam.modeling_sam import SamLayerNorm

    from .sam import SamAdapter

    torch.manual_seed(seed)
    s, c, stride = arch["image_size"], arch["embed_dim"], arch["stride"]
    e = s // stride
    cfg = SamConfig(
        vision_config=dict(hidden_size=c, output_channels=c, num_hidden_layers=1, num_attention_heads=1,
                           image_size=s, patch_size=stride, mlp_dim=c, window_size=0, global_attn_indexes=[0],
                           num_pos_feats=c // 2),
        prompt_encoder_config=dict(hidden_size=c, image_size=s, patch_size=stride,
                                   mask_input_channels=arch["mask_input_channels"]),
        mask_decoder_config=dict(hidden_size=c, mlp_dim=arch["decoder_mlp"], num_hidden_layers=arch["decoder_layers"],
                                 num_attention_heads=arch["decoder_heads"], iou_head_hidden_dim=c),
    )
    assert cfg.prompt_encoder_config.image_embedding_size == e, cfg.prompt_encoder_config.image_embedding_size

    def gn(ch):
        return nn.GroupNorm(min(8, ch), ch)

    class Block(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.c1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.n1 = gn(ch)
            self.c2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.n2 = gn(ch)

        def forward(self, x):
            y = torch.relu(self.n1(self.c1(x)))
            return torch.relu(x + self.n2(self.c2(y)))

    def down(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), gn(cout), nn.ReLU())

    class CnnEncoder(nn.Module):
        """Residual CNN, strides 2..32, and a top-down feature pyramid (Lin et al., CVPR 2017) back to stride 4:
        pixel_values [B,3,S,S] -> image_embeddings [B,C,S/4,S/4], ending in SAM's neck norm (LayerNorm2d)."""

        def __init__(self):
            super().__init__()
            w, d = arch["widths"], arch["depths"]
            self.stem = down(3, w[0])  # stride 2
            self.stages = nn.ModuleList()
            for i in range(4):  # strides 4, 8, 16, 32
                self.stages.append(nn.Sequential(down(w[i], w[i + 1]), *[Block(w[i + 1]) for _ in range(d[i])]))
            self.lateral = nn.ModuleList([nn.Conv2d(w[i + 1], c, 1) for i in range(4)])
            self.out = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                     SamLayerNorm(c, data_format="channels_first"), nn.ReLU(),
                                     nn.Conv2d(c, c, 1, bias=False), SamLayerNorm(c, data_format="channels_first"))

        def forward(self, pixel_values):
            x = self.stem(pixel_values)
            feats = []
            for st in self.stages:
                x = st(x)
                feats.append(x)
            y = self.lateral[3](feats[3])
            for i in (2, 1, 0):
                y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest") + self.lateral[i](feats[i])
            return (self.out(y),)

    model = SamModel(cfg)
    model.vision_encoder = nn.Identity()  # replaced by CnnEncoder in the adapter
    # one Gaussian random-Fourier positional matrix for points and the image grid (SAM's PositionEmbeddingRandom,
    # scale 1), fixed like SAM's buffer
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn((2, c // 2), generator=g)
    model.shared_image_embedding.positional_embedding = nn.Parameter(pos.clone(), requires_grad=False)
    model.prompt_encoder.shared_embedding = model.shared_image_embedding
    encoder = CnnEncoder()
    adapter = SamAdapter(model, encoder=encoder)
    if arch.get("prompt_maps"):
        adapter.decoder = PromptMapDecoder(adapter.decoder, s, e, c, arch["prompt_maps"])
    # training only (not exported): lungs-vs-rest from the embedding, so the encoder learns lung features early
    adapter.aux = nn.Conv2d(c, 1, 1)
    info = dict(arch="lung-sam-cnn", image_size=s, embedding_size=e, embedding_dim=c, mask_size=4 * e,
                extra_features=[])
    return adapter, info


def _prompt_map_decoder_class():
    import torch
    from torch import nn

    class PromptMapDecoder(nn.Module):
        """SAM's decoder (sam.py's adapter, same five inputs) with dense prompt maps added to the image embedding,
        as click maps in interactive segmentation (Xu et al., "Deep Interactive Object Selection", CVPR 2016;
        RITM, Sofiiuk et al. 2022): on the E x E grid, a soft inside-the-box map (box corners labelled 2 / 3) and
        Gaussian maps (sigma px of the frame) of the positive and the negative clicks; a small conv turns them into
        C channels. Padding points (-1) add nothing. SAM's own sparse prompt path is unchanged, so points and box
        still reach the two-way transformer as tokens; the maps make 'inside the box' learnable from a few hundred
        images."""

        def __init__(self, base, image_size: int, e: int, c: int, maps: dict):
            super().__init__()
            self.base = base
            self.sigma = float(maps.get("sigma", 10.0))
            self.tau = float(maps.get("tau", 2.0))
            stride = image_size / e
            centres = (torch.arange(e, dtype=torch.float32) + 0.5) * stride
            gy, gx = torch.meshgrid(centres, centres, indexing="ij")
            self.register_buffer("gx", gx.reshape(1, 1, e * e), persistent=False)
            self.register_buffer("gy", gy.reshape(1, 1, e * e), persistent=False)
            self.e = e
            self.maps = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, c, 1))

        @property
        def multimask_output(self):
            return self.base.multimask_output

        @multimask_output.setter
        def multimask_output(self, on):
            self.base.multimask_output = on

        def prompt_maps(self, point_coords, point_labels):
            """point_coords [B,N,2] frame pixels, point_labels [B,N] -> [B,3,E,E] (positive, negative, box)."""
            x = point_coords[..., 0:1] + 0.5  # [B,N,1], continuous coordinates of the pixel centre
            y = point_coords[..., 1:2] + 0.5
            lab = point_labels.unsqueeze(-1)
            d2 = (self.gx - x) ** 2 + (self.gy - y) ** 2  # [B,N,E*E]
            g = torch.exp(-d2 / (2 * self.sigma ** 2))
            pos = (g * (lab == 1).to(g.dtype)).amax(1)
            neg = (g * (lab == 0).to(g.dtype)).amax(1)
            is2, is3 = (lab == 2).to(g.dtype), (lab == 3).to(g.dtype)
            x0, y0 = (x * is2).sum(1), (y * is2).sum(1)  # [B,1]
            x1, y1 = (x * is3).sum(1), (y * is3).sum(1)
            has_box = is2.amax(1)
            t = self.tau
            inside = (torch.sigmoid((self.gx[:, 0] - x0) / t) * torch.sigmoid((x1 - self.gx[:, 0]) / t)
                      * torch.sigmoid((self.gy[:, 0] - y0) / t) * torch.sigmoid((y1 - self.gy[:, 0]) / t)) * has_box
            return torch.stack([pos, neg, inside], 1).reshape(-1, 3, self.e, self.e)

        def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
            extra = self.maps(self.prompt_maps(point_coords, point_labels))
            return self.base(image_embeddings + extra, point_coords, point_labels, mask_input, has_mask_input)

    return PromptMapDecoder


def PromptMapDecoder(*a, **kw):  # noqa: N802  (class built lazily: torch is imported only when used)
    return _prompt_map_decoder_class()(*a, **kw)


def modules_of(adapter):
    """The trainable modules (the decoder wrapper holds the whole SamModel: prompt encoder + mask decoder)."""
    import torch

    mods = {"encoder": adapter.encoder, "sam": adapter.model, "aux": adapter.aux}
    if hasattr(adapter.decoder, "maps"):
        mods["prompt_maps"] = adapter.decoder.maps
    return torch.nn.ModuleDict(mods)


# ---------------------------------------------------------------------------------------------------------------
# Prompts and augmentation
# ---------------------------------------------------------------------------------------------------------------


def augment_batch(rng, frames, hw, targets, weights, boxes, size: int, strength: float = 1.0):
    """Random scale (0.85-1.15), shift (+-8% of the frame), horizontal flip, gamma / contrast / brightness, applied
    to image, targets, weights and boxes alike. frames uint8 [B,S,S] -> (pixels float [B,3,S,S], targets float
    [B,2,S,S] in [0,1], weights float [B,S,S], boxes float [B,2,4]); boxes stay x0<x1 (a flip swaps the sides of
    the image, not which lung a prompt means)."""
    import torch
    import torch.nn.functional as F

    b = frames.shape[0]
    x = torch.as_tensor(frames).float() / 255.0
    out = []
    for i in range(b):
        xi = x[i]
        gamma = math.exp(rng.uniform(-0.35, 0.35) * strength)
        contrast = 1 + rng.uniform(-0.25, 0.25) * strength
        bright = rng.uniform(-0.1, 0.1) * strength
        xi = ((xi.clamp(0, 1) ** gamma - 0.5) * contrast + 0.5 + bright).clamp(0, 1)
        out.append(xi)
    x = torch.stack(out) * 255.0
    pix = normalize(x.numpy(), [tuple(v) for v in hw])
    tg = torch.as_tensor(targets).float() / 255.0
    wg = torch.as_tensor(weights).float().unsqueeze(1) / 255.0
    stack = torch.cat([pix, tg, wg], 1)
    thetas = []
    new_boxes = boxes.astype(np.float32).copy()
    for i in range(b):
        s = math.exp(rng.uniform(math.log(0.85), math.log(1.15)) * strength)
        tx, ty = rng.uniform(-0.08, 0.08, 2) * size * strength
        flip = rng.uniform() < 0.5 * strength
        f = -1.0 if flip else 1.0
        half = size / 2
        # normalised coords (align_corners=False) u = X/half - 1: forward u' = f (s u + tx/half); grid_sample
        # needs the inverse u = (f/s) u' - tx/(half s)
        thetas.append([[f / s, 0.0, -tx / (half * s)], [0.0, 1 / s, -ty / (half * s)]])
        # forward map on continuous coords X = p + 0.5: X' = s (X - half) + half + t, then X'' = S - X' if flipped
        bx = new_boxes[i]
        xs = s * (bx[:, [0, 2]] + 0.5 - half) + half + tx
        ys = s * (bx[:, [1, 3]] + 0.5 - half) + half + ty
        if flip:
            xs = size - xs
        xs, ys = xs - 0.5, ys - 0.5
        bx[:, 0], bx[:, 2] = xs.min(1), xs.max(1)
        bx[:, 1], bx[:, 3] = ys.min(1), ys.max(1)
    theta = torch.tensor(thetas, dtype=torch.float32)
    grid = F.affine_grid(theta, list(stack.shape), align_corners=False)
    warped = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    pix = warped[:, :3]
    tg = warped[:, 3:5]
    # outside the source frame: padding pixels, counted as background like the frame's own padding
    wg = warped[:, 5] + (1 - F.grid_sample(torch.ones_like(stack[:, :1]), grid, mode="bilinear",
                                           padding_mode="zeros", align_corners=False)[:, 0])
    np.clip(new_boxes, 0, size - 1, out=new_boxes)
    return pix.contiguous(), tg.contiguous(), wg.clamp(0, 1).contiguous(), new_boxes


def jitter_box(rng, box, size: int, sigma: float = 0.06):
    """Each side moved by N(0, sigma x box side), clipped to the frame; at least 4 px wide/high."""
    x0, y0, x1, y1 = box
    bw, bh = max(x1 - x0, 4), max(y1 - y0, 4)
    d = rng.normal(0, sigma, 4) * np.array([bw, bh, bw, bh])
    nb = np.clip(np.array([x0, y0, x1, y1]) + d, 0, size - 1)
    if nb[2] - nb[0] < 4:
        nb[2] = min(size - 1, nb[0] + 4)
    if nb[3] - nb[1] < 4:
        nb[3] = min(size - 1, nb[1] + 4)
    return nb.astype(np.float32)


def _pick(rng, mask: np.ndarray, fallback) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return fallback
    j = rng.integers(len(xs))
    return float(xs[j]) + rng.uniform(-0.5, 0.5), float(ys[j]) + rng.uniform(-0.5, 0.5)


def sample_prompts(rng, layout: str, target: np.ndarray, weight: np.ndarray, box: np.ndarray, size: int,
                   n_clicks: int):
    """One prompt in SAM's ONNX convention: (coords float32 [N,2], labels float32 [N]); clicks come first, box
    corners (labels 2, 3) last; with no box a padding point (0,0) labelled -1 is appended.
    target/weight: [S,S] float in [0,1]; box: x0,y0,x1,y1 frame pixels."""
    fg = (target > 0.5) & (weight > 0.5)
    bg = (target < 0.5) & (weight > 0.5)
    cx, cy = float((box[0] + box[2]) / 2), float((box[1] + box[3]) / 2)
    pts, labs = [], []
    if layout == "centre-click":
        bw, bh = box[2] - box[0], box[3] - box[1]
        pts.append((cx + rng.normal(0, 0.04) * bw, cy + rng.normal(0, 0.04) * bh))
        labs.append(1)
    elif layout in ("clicks", "box+clicks"):
        for k in range(n_clicks):
            positive = k == 0 and layout == "clicks" or rng.uniform() < 0.6
            if positive:
                pts.append(_pick(rng, fg, (cx, cy)))
                labs.append(1)
            else:
                near = bg.copy()
                x0, y0, x1, y1 = [int(v) for v in box]
                region = np.zeros_like(near)
                region[max(0, y0 - 8):y1 + 8, max(0, x0 - 8):x1 + 8] = True
                pts.append(_pick(rng, near & region if (near & region).any() else near, (cx, cy)))
                labs.append(0)
    if layout in ("box", "jittered-box", "box+clicks"):
        b = box if layout == "box" or (layout == "box+clicks" and rng.uniform() < 0.5) else jitter_box(rng, box, size)
        pts += [(b[0], b[1]), (b[2], b[3])]
        labs += [2, 3]
    else:
        pts.append((0.0, 0.0))
        labs.append(-1)
    coords = np.clip(np.array(pts, np.float32), 0, size - 1)
    return coords, np.array(labs, np.float32)


def corrective_click(rng, pred_logits: np.ndarray, target: np.ndarray, weight: np.ndarray):
    """SAM-style next click: from the larger error region, a positive click in a miss or a negative one in a false
    alarm. Returns ((x, y), label)."""
    pred = pred_logits > 0
    t = target > 0.5
    valid = weight > 0.5
    fn = ~pred & t & valid
    fp = pred & ~t & valid
    if fn.sum() >= fp.sum():
        return _pick(rng, fn if fn.any() else t & valid, (0.0, 0.0)), 1.0
    return _pick(rng, fp, (0.0, 0.0)), 0.0


def insert_click(coords, labels, xy, lab):
    """Adds a click before the box corners / padding point (clicks first, as in SAM's ONNX example)."""
    n_tail = 2 if (labels == 2).any() else 1
    c = np.concatenate([coords[:-n_tail], np.array([xy], np.float32), coords[-n_tail:]])
    lb = np.concatenate([labels[:-n_tail], np.array([lab], np.float32), labels[-n_tail:]])
    return c, lb


# ---------------------------------------------------------------------------------------------------------------
# Loss and metrics
# ---------------------------------------------------------------------------------------------------------------


def mask_losses(logits, target, weight):
    """logits [P,M,S,S], target [P,S,S] in [0,1], weight [P,S,S] (0 = ignore label) -> per-mask loss [P,M]:
    weighted BCE + soft Dice (ignore pixels count for neither)."""
    import torch.nn.functional as F

    t = target.unsqueeze(1).expand_as(logits)
    w = weight.unsqueeze(1).expand_as(logits)
    bce = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * w).sum((2, 3)) / w.sum((2, 3)).clamp(
        min=1)
    p = logits.sigmoid() * w
    inter = (p * t).sum((2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((2, 3)) + (t * w).sum((2, 3)) + 1)
    return bce + dice


def mask_iou(logits, target, weight):
    """Hard IoU of (logits > 0) vs (target > 0.5) over counted pixels: [P,M] (the IoU head's regression target)."""
    pred = (logits > 0).float()
    t = (target > 0.5).float().unsqueeze(1)
    w = (weight > 0.5).float().unsqueeze(1)
    inter = (pred * t * w).sum((2, 3))
    union = ((pred + t).clamp(max=1) * w).sum((2, 3))
    return inter / union.clamp(min=1)


def dice_iou(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray) -> tuple[float, float]:
    """Binary Dice and IoU over the pixels not labelled ignore (127). Both empty: 1.0."""
    keep = ~ignore
    p = pred & keep
    t = target & keep
    inter = float(np.logical_and(p, t).sum())
    ps, ts = float(p.sum()), float(t.sum())
    union = ps + ts - inter
    if ps + ts == 0:
        return 1.0, 1.0
    return 2 * inter / (ps + ts), inter / union


def summarize(values) -> dict:
    v = np.asarray(values, float)
    return {"mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "p10": round(float(np.percentile(v, 10)), 4), "min": round(float(v.min()), 4), "n": int(v.size)}


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def training_step(adapter, data, idx, rng, size: int, refine_p: float = 0.2, aug: float = 1.0, aux_w: float = 0.5,
                  layouts=LAYOUTS):
    """One step on images idx, both lungs of each. Returns (loss tensor, stats dict)."""
    import torch

    frames = data["frames"][idx]
    pix, tg, wg, boxes = augment_batch(rng, frames, data["hw"][idx], data["targets"][idx], data["weights"][idx],
                                       data["boxes"][idx], size, aug)
    names = [n for n, _ in layouts]
    probs = np.array([p for _, p in layouts])
    layout = names[rng.choice(len(names), p=probs / probs.sum())]
    n_clicks = int(rng.integers(1, 4)) if layout == "clicks" else int(rng.integers(1, 3))
    emb = adapter.encoder(pix)
    b = len(idx)
    tgt = tg.reshape(b * 2, size, size)
    wgt = wg.repeat_interleave(2, 0)
    tgt_np, wgt_np = tgt.numpy(), wgt.numpy()
    coords, labels = [], []
    for j in range(b * 2):
        c, lb = sample_prompts(rng, layout, tgt_np[j], wgt_np[j], boxes[j // 2, j % 2], size, n_clicks)
        coords.append(c)
        labels.append(lb)
    e = emb.repeat_interleave(2, 0)
    m = adapter.model.config.prompt_encoder_config.image_embedding_size * 4
    no_mask = torch.zeros(b * 2, 1, m, m)
    masks, iou_pred = adapter.decoder(e, torch.from_numpy(np.stack(coords)), torch.from_numpy(np.stack(labels)),
                                      no_mask, torch.zeros(b * 2))
    loss, stats = _prompt_loss(masks, iou_pred, tgt, wgt)
    # auxiliary: both lungs from the embedding at its own resolution (encoder only; not exported)
    stride = size // emb.shape[-1]
    lungs = torch.nn.functional.avg_pool2d(tg.amax(1, keepdim=True), stride)
    w_aux = torch.nn.functional.avg_pool2d(wg.unsqueeze(1), stride)
    aux = (torch.nn.functional.binary_cross_entropy_with_logits(adapter.aux(emb), lungs, reduction="none")
           * w_aux).sum() / w_aux.sum().clamp(min=1)
    stats["aux_loss"] = float(aux.detach())
    if rng.uniform() < refine_p:
        # second interaction: previous best low-res logits as mask_input + a corrective click
        best = masks.detach()[torch.arange(b * 2), iou_pred.detach().argmax(1)]
        best_np = best.numpy()
        c2, l2 = [], []
        for j in range(b * 2):
            xy, lab = corrective_click(rng, best_np[j], tgt_np[j], wgt_np[j])
            c, lb = insert_click(coords[j], labels[j], np.clip(xy, 0, size - 1), lab)
            c2.append(c)
            l2.append(lb)
        masks2, iou2 = adapter.decoder(e, torch.from_numpy(np.stack(c2)), torch.from_numpy(np.stack(l2)),
                                       best.unsqueeze(1), torch.ones(b * 2))
        loss2, stats2 = _prompt_loss(masks2, iou2, tgt, wgt)
        loss = 0.5 * (loss + loss2)
        stats["refine_dice_loss"] = stats2["mask_loss"]
    stats["layout"] = layout
    return loss + aux_w * aux, stats


def _prompt_loss(masks, iou_pred, tgt, wgt):
    import torch

    per = mask_losses(masks, tgt, wgt)  # [P,3]
    best = per.min(1).values
    with torch.no_grad():
        iou_t = mask_iou(masks, tgt, wgt)
    iou_loss = ((iou_pred - iou_t) ** 2).mean()
    loss = best.mean() + 0.2 * per.mean() + iou_loss
    return loss, {"mask_loss": float(best.mean().detach()), "iou_loss": float(iou_loss.detach())}


def save_checkpoint(path: Path, adapter, opt, step: int, meta: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": modules_of(adapter).state_dict(), "opt": opt.state_dict(), "step": step, "meta": meta}, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> dict:
    """Trains (or resumes) until --steps or --time-budget-min. Returns the run summary (also run_dir/train.json)."""
    import torch

    torch.set_num_threads(max(1, int(args.threads)))
    arch = dict(TINY_ARCH if args.tiny else DEFAULT_ARCH)
    size = arch["image_size"]
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(Path(args.data), size, limit=args.limit_images,
                        cache=None if args.limit_images else run_dir / f"data-{size}.npz")
    tr, ev = split_indices(data["groups"], args.seed, args.holdout)
    adapter, info = build_model(arch, args.seed)
    mods = modules_of(adapter)
    params = [p for p in mods.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    ckpt = run_dir / "checkpoint.pt"
    step = 0
    log_path = run_dir / "train_log.jsonl"
    ft_steps = int(getattr(args, "finetune_steps", 0) or 0)
    total = args.steps + ft_steps
    meta = {"arch": arch, "seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "finetune_steps": ft_steps, "finetune_lr": float(getattr(args, "finetune_lr", 0.0) or 0.0),
            "holdout": args.holdout, "n_train": int(len(tr)), "n_eval": int(len(ev)),
            "eval_names": [str(data["names"][i]) for i in ev]}
    elapsed_before = 0.0
    if ckpt.exists() and not args.restart:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["meta"]["arch"] != arch or state["meta"]["seed"] != args.seed:
            raise ExportError(f"{ckpt}: checkpoint of another arch/seed; use --restart or another --run-dir")
        mods.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        elapsed_before = float(state["meta"].get("train_seconds", 0.0))
        print(f"resumed from {ckpt} at step {step}", flush=True)
    elif args.restart and log_path.exists():
        log_path.unlink()
    mods.train()
    t0 = time.time()
    budget = args.time_budget_min * 60 if args.time_budget_min else float("inf")
    n_params = sum(p.numel() for p in mods.parameters())
    print(json.dumps({"params": n_params, "n_train": len(tr), "n_eval": len(ev), "start_step": step,
                      "steps": total}), flush=True)
    losses = []
    with open(log_path, "a") as log:
        stop_at = total if not getattr(args, "stop_after", None) else min(total, step + args.stop_after)
        while step < stop_at and time.time() - t0 < budget:
            rng = np.random.default_rng([args.seed, step])
            idx = tr[rng.choice(len(tr), size=min(args.batch, len(tr)), replace=False)]
            for g in opt.param_groups:
                g["lr"] = (lr_at(step, args.steps, args.lr, args.warmup) if step < args.steps else
                           lr_at(step - args.steps, ft_steps, args.finetune_lr, 10))
            loss, stats = training_step(adapter, data, idx, rng, size, aug=args.aug,
                                        layouts=LAYOUTS if step < args.steps else FINETUNE_LAYOUTS)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            losses.append(float(loss.detach()))
            rec = {"step": step, "loss": round(losses[-1], 5), **stats,
                   "t": round(elapsed_before + time.time() - t0, 1)}
            log.write(json.dumps(rec) + "\n")
            if step % 20 == 0 or step == total:
                log.flush()
                print(json.dumps(rec), flush=True)
            if step % args.checkpoint_every == 0 and step < total:
                meta["train_seconds"] = elapsed_before + time.time() - t0
                save_checkpoint(ckpt, adapter, opt, step, meta)
    meta["train_seconds"] = elapsed_before + time.time() - t0
    save_checkpoint(ckpt, adapter, opt, step, meta)
    summary = {"step": step, "done": step >= total, "params": n_params,
               "train_seconds": round(meta["train_seconds"], 1), "losses": losses}
    (run_dir / "train.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}), flush=True)
    return summary


def load_trained(run_dir: Path):
    """(adapter, info, meta) from run_dir/checkpoint.pt, in eval mode."""
    import torch

    state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    adapter, info = build_model(state["meta"]["arch"], state["meta"]["seed"])
    modules_of(adapter).load_state_dict(state["model"])
    adapter.encoder.eval()
    adapter.decoder.eval()
    return adapter, info, state["meta"], int(state["step"])
