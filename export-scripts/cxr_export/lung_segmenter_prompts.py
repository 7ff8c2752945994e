"""Prompts and augmentation for training the lung segmenter (lung_segmenter.py): the prompt layouts sampled per step,
seeded geometric / photometric batch augmentation, box jitter, positive / negative clicks and the corrective click of
the refinement pass (as SAM's interactive training does)."""

from __future__ import annotations

import math

import numpy as np

from .lung_segmenter_data import normalize


# prompt layouts sampled per training step (all prompts of one step share one token count)
LAYOUTS = (("box", 0.30), ("jittered-box", 0.20), ("centre-click", 0.15), ("clicks", 0.15), ("box+clicks", 0.20))
# the click-weighted second phase (--finetune-steps): single clicks are the harder prompt to learn
FINETUNE_LAYOUTS = (("box", 0.20), ("jittered-box", 0.10), ("centre-click", 0.35), ("clicks", 0.25),
                    ("box+clicks", 0.10))


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
