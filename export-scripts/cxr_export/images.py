"""Opening X-ray images for training and evaluation exactly as the app and `npm run label` see them.

One behaviour everywhere (app/lib/imaging/raster-decode.ts is the TypeScript side):

- 16-bit PNGs (greyscale, greyscale+alpha, RGB, RGBA) are read at full precision and WINDOWED BY THEIR STORED
  RANGE: ``out = floor((v - min) * 255 / (max - min) + 0.5)`` in float64 over the grey channel (or the three colour
  channels together), all 0 when max == min; alpha is dropped. Pillow's ``convert('RGB')`` would clip 'I;16' at 255
  (a 12-bit detector image turns white) and Pillow reads 16-bit RGB and grey+alpha PNGs with 8 bits only, so those
  two are read with pypng.
- EXIF Orientation (tag 0x0112; JPEG APP1 and PNG eXIf) is APPLIED, as browsers show the image: the transforms of
  ``PIL.ImageOps.exif_transpose``.
- Everything else is ``Image.convert('RGB')`` (8-bit greyscale replicated to three channels, palette expanded,
  alpha dropped).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: EXIF orientation -> PIL transpose method name, as PIL.ImageOps.exif_transpose maps it.
ORIENTATION_TRANSPOSE = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def png_header(path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's IHDR (PNG 1.2 §11.2.2); None when the file is no PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def window_stored_range(a: np.ndarray) -> np.ndarray:
    """uint16 samples [H,W] or [H,W,C] -> uint8 [H,W,3]: min..max of the grey (C<3) or colour channels -> 0..255."""
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None]
    chans = a[:, :, :3] if a.shape[2] >= 3 else a[:, :, :1]
    x = chans.astype(np.float64)
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if hi > lo:
        out = np.floor((x - lo) * 255.0 / (hi - lo) + 0.5).astype(np.uint8)
    else:
        out = np.zeros(chans.shape, np.uint8)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


def read_png16(path) -> np.ndarray:
    """A 16-bit PNG's samples as uint16 [H,W,C] (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), sBIT not applied."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im).astype(np.uint16)[:, :, None]
    import png  # pypng: Pillow has no 48/64-bit RGB(A) or 32-bit grey+alpha mode

    w, h, rows, info = png.Reader(filename=str(path)).read()
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, info["planes"])


def exif_orientation(im) -> int:
    """EXIF Orientation (1..8; 1 when absent or invalid) of an open PIL image."""
    try:
        o = int(im.getexif().get(0x0112, 1))
    except Exception:  # unreadable EXIF: shown as stored, like the app
        return 1
    return o if 1 <= o <= 8 else 1


def open_rgb(path):
    """Open an image file as the app does: PIL RGB image, 16-bit PNGs windowed by stored range, EXIF applied."""
    from PIL import Image

    path = Path(path)
    hdr = png_header(path)
    with Image.open(path) as im:
        orientation = exif_orientation(im)
        if hdr is not None and hdr[0] == 16:
            out = Image.fromarray(window_stored_range(read_png16(path)), "RGB")
        else:
            out = im.convert("RGB")
    method = ORIENTATION_TRANSPOSE.get(orientation)
    if method:
        out = out.transpose(getattr(Image.Transpose, method))
    return out


def read_rgb_array(path) -> np.ndarray:
    """open_rgb as uint8 [H,W,3]."""
    return np.asarray(open_rgb(path), dtype=np.uint8).copy()
