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
- Non-interlaced PNGs over 4096×4096 pixels are box-averaged by the smallest integer factor that brings them under
  that (the app streams them row by row to keep memory bounded: app/lib/imaging/png-stream.ts); the averages are
  rounded through float32 as there.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: Larger images are downsampled while decoding (app/lib/imaging/png-stream.ts LARGE_IMAGE_MAX_PIXELS).
LARGE_IMAGE_MAX_PIXELS = 4096 * 4096

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
    h = png_ihdr(path)
    return (h["bit_depth"], h["color_type"]) if h else None


def png_ihdr(path) -> dict | None:
    """IHDR fields of a PNG (width, height, bit_depth, color_type, interlace); None when the file is no PNG."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return {
        "width": int.from_bytes(head[16:20], "big"),
        "height": int.from_bytes(head[20:24], "big"),
        "bit_depth": head[24],
        "color_type": head[25],
        "interlace": head[28],
    }


def downsample_factor(width: int, height: int, max_pixels: int = LARGE_IMAGE_MAX_PIXELS) -> int:
    """Smallest integer factor f with ceil(w/f)*ceil(h/f) <= max_pixels (1 when it fits)."""
    f = max(1, math.ceil(math.sqrt(width * height / max_pixels)))
    while math.ceil(width / f) * math.ceil(height / f) > max_pixels:
        f += 1
    return f


def box_average(a: np.ndarray, f: int) -> np.ndarray:
    """Mean of f×f blocks of [H,W,C] (edge blocks: the pixels they have), rounded to float32 as the app stores it."""
    rows = np.arange(0, a.shape[0], f)
    cols = np.arange(0, a.shape[1], f)
    s = np.add.reduceat(np.add.reduceat(a.astype(np.float64), rows, axis=0), cols, axis=1)
    n = np.outer(np.diff(np.append(rows, a.shape[0])), np.diff(np.append(cols, a.shape[1])))[:, :, None]
    return (s / n).astype(np.float32)


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
    ihdr = png_ihdr(path)
    big = ihdr is not None and ihdr["interlace"] == 0 and ihdr["width"] * ihdr["height"] > LARGE_IMAGE_MAX_PIXELS
    with Image.open(path) as im:
        orientation = exif_orientation(im)
        if big:
            out = Image.fromarray(_large_png(path, im, ihdr), "RGB")
        elif ihdr is not None and ihdr["bit_depth"] == 16:
            out = Image.fromarray(window_stored_range(read_png16(path)), "RGB")
        else:
            out = im.convert("RGB")
    method = ORIENTATION_TRANSPOSE.get(orientation)
    if method:
        out = out.transpose(getattr(Image.Transpose, method))
    return out


def _large_png(path, im, ihdr, f: int | None = None) -> np.ndarray:
    """Box-averaged uint8 RGB of a PNG over LARGE_IMAGE_MAX_PIXELS, as app/lib/imaging/png-stream.ts computes it
    (f: the factor; default downsample_factor of its size)."""
    f = f or downsample_factor(ihdr["width"], ihdr["height"])
    if ihdr["bit_depth"] == 16:
        a = read_png16(path)
        a = a[:, :, :3] if a.shape[2] >= 3 else a[:, :, :1]
        lo, hi = float(a.min()), float(a.max())
        m = box_average(a, f).astype(np.float64)
        out = np.floor((m - lo) * 255.0 / (hi - lo) + 0.5) if hi > lo else np.zeros_like(m)
    else:
        a = np.asarray(im.convert("RGB"))
        if ihdr["color_type"] in (0, 4):  # grey: the app averages one channel
            a = a[:, :, :1]
        out = np.floor(box_average(a, f).astype(np.float64) + 0.5)
    out = out.astype(np.uint8)
    if out.shape[2] == 1:
        out = np.repeat(out, 3, axis=2)
    return np.ascontiguousarray(out)


def downsampled_rgb(path, f: int) -> np.ndarray:
    """The large-PNG path with an explicit factor (tests compare it with the app's decodePngStreaming)."""
    from PIL import Image

    with Image.open(path) as im:
        return _large_png(Path(path), im, png_ihdr(path), f)


def read_rgb_array(path) -> np.ndarray:
    """open_rgb as uint8 [H,W,3]."""
    return np.asarray(open_rgb(path), dtype=np.uint8).copy()


def preprocess_file(path, prep: dict) -> np.ndarray:
    """The app's preprocessing in numpy: PIL decode RGB, resize (PIL bilinear/bicubic) only if the size differs,
    /255, (x - mean) / std, NCHW float32 [3,H,W]."""
    from PIL import Image

    with open_rgb(path) as im:
        h, w = prep["size"]
        if (im.height, im.width) != (h, w):
            im = im.resize((w, h), Image.BICUBIC if prep["resize"] == "bicubic" else Image.BILINEAR)
        a = np.asarray(im, dtype=np.float32) / 255.0
    a = (a - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32)
