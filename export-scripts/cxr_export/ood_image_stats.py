"""Image-statistics features of the OOD score (ood.py): the grey-level layout and histogram of the classifier's own
input tensor, class-agnostic. app/lib/classifier/ood-image.ts computes the same from the same tensor.

Why: the attention features alone rank a grey radiograph of another body part (the abdomen/pelvis DICOM of
../shared/data/dicom) barely above the threshold (1.12x on v2) — inside the spread of the Kermany test images —
because a patch-32 ViT's attention statistics mostly see "a grey X-ray": the abdomen has chest-like grey statistics
and texture. What differs is the layout (no dark lung fields either side of a bright mediastinum) and, for
photographs, colour. A Mahalanobis distance on a coarse, contrast-normalised layout grid, the grey histogram and
the colour saturation (a simple image-statistics prior, in the spirit of the "input complexity"/low-level-statistics
baselines of OOD detection) catches both; combined with the attention score (ood.py) it keeps the adult chest
X-rays flagged and the Kermany test images in.

Features of one image, from the model input x [3,H,W] (x_c = (rgb_c/255 - mean_c)/std_c):
    rgb     = x * std + mean (back to [0,1]); grey = mean_c rgb_c
    m, s    = mean and (population) standard deviation of grey
    z       = (grey - m) / (s + 1e-3)                                          (contrast-normalised)
    layout  = per cell of a grid x grid split (H/grid x W/grid pixels): mean z, then log(1e-3 + std z)
    hist    = sqrt(fraction of grey in each of `bins` equal bins of [0,1])     (bin = min(bins-1, floor(grey*bins)))
    colour  = log(1e-3 + mean over pixels and channels of |rgb_c - grey|)
    f(x)    = [layout means (grid^2), layout log-stds (grid^2), hist (bins), colour, m, log(1e-3 + s)]
"""

from __future__ import annotations

import numpy as np

from .errors import ExportError


EPS = 1e-3


def image_stats_features(x: np.ndarray, mean, std, grid: int = 16, bins: int = 16) -> np.ndarray:
    """Model inputs x [N,3,H,W] (float32, normalised by mean/std per channel) -> features [N, 2*grid^2 + bins + 3]
    (float64), as in the module docstring. Raises ExportError when H or W is not a multiple of grid."""
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ExportError(f"image_stats_features: x must be [N,3,H,W], got {list(x.shape)}")
    n, _, h, w = x.shape
    if h % grid or w % grid:
        raise ExportError(f"image_stats_features: {h}x{w} is not a multiple of the {grid}x{grid} grid")
    rgb = x.astype(np.float64) * np.asarray(std, np.float64)[None, :, None, None] + \
        np.asarray(mean, np.float64)[None, :, None, None]
    grey = rgb.mean(1)
    m = grey.mean((1, 2))
    s = grey.std((1, 2))
    z = (grey - m[:, None, None]) / (s[:, None, None] + EPS)
    cells = z.reshape(n, grid, h // grid, grid, w // grid)
    layout_mean = cells.mean((2, 4)).reshape(n, -1)
    layout_std = np.log(cells.std((2, 4)).reshape(n, -1) + EPS)
    idx = np.minimum(bins - 1, np.floor(np.clip(grey, 0, 1) * bins)).astype(np.int64).reshape(n, -1)
    hist = np.stack([np.bincount(r, minlength=bins) for r in idx]) / (h * w)
    colour = np.log(np.abs(rgb - grey[:, None]).mean((1, 2, 3)) + EPS)
    return np.concatenate([layout_mean, layout_std, np.sqrt(hist), colour[:, None], m[:, None],
                           np.log(s + EPS)[:, None]], 1)


def feature_count(grid: int, bins: int) -> int:
    return 2 * grid * grid + bins + 3
