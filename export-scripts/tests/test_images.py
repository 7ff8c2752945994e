"""cxr_export.images: 16-bit PNGs at full precision (stored-range window) and EXIF orientation applied, the
behaviour of the app's decoder (app/lib/imaging/raster-decode.ts; the TypeScript test
tests/unit/imaging/png16-exif.test.ts compares both sides on the same files)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageOps

from cxr_export.data import read_rgb
from cxr_export.images import open_rgb, read_png16, window_stored_range


def _bug(shared_dir, name):
    d = shared_dir / "data" / "bugreports" / name
    if not d.is_dir():
        pytest.skip(f"{d} missing")
    return d, json.loads((d / "expected.json").read_text())


def test_png16_12bit_values_windowed_by_stored_range(shared_dir):
    d, exp = _bug(shared_dir, "11-png16-12bit-values")
    raw = read_png16(d / "image.png")[:, :, 0]
    assert raw.ravel()[:8].tolist() == exp["first_values"]
    assert (int(raw.min()), int(raw.max())) == (exp["min"], exp["max"])
    a = np.asarray(open_rgb(d / "image.png"))
    assert a[..., 0].ravel()[:8].tolist() == [int(v) for v in exp["windowed_first"]]
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 0] == a[..., 2]).all()
    assert (int(a.min()), int(a.max())) == (0, 255)
    # what Pillow alone does (the bug): convert('RGB') clips at 255
    with Image.open(d / "image.png") as im:
        clipped = np.asarray(im.convert("RGB"))
    assert clipped[..., 0].ravel()[:8].tolist() == exp["pil_convert_rgb_first"]
    # training and evaluation read through the same function
    assert (read_rgb(d / "image.png") == a).all()


def test_jpeg_exif_orientation_applied(shared_dir):
    d, exp = _bug(shared_dir, "12-jpeg-exif-orientation-6")
    with Image.open(d / "image.jpg") as im:
        assert list(im.size) == exp["pil_open_size"]
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    im = open_rgb(d / "image.jpg")
    assert list(im.size) == exp["displayed_size"]
    assert (np.asarray(im) == ref).all()
    assert read_rgb(d / "image.jpg").shape == (exp["displayed_size"][1], exp["displayed_size"][0], 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_exif_transpose(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored, "RGB").save(p, exif=exif)
    with Image.open(p) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    got = np.asarray(open_rgb(p))
    assert got.shape == ref.shape
    assert (got == ref).all()


def _write_png16(path, a: np.ndarray, greyscale: bool, alpha: bool):
    import png

    h, w = a.shape[:2]
    png.Writer(w, h, greyscale=greyscale, alpha=alpha, bitdepth=16).write(path.open("wb"), a.reshape(h, -1).tolist())


@pytest.mark.parametrize("kind", ["grey", "grey_alpha", "rgb", "rgba"])
def test_png16_all_colour_types(tmp_path, kind):
    rng = np.random.default_rng(3)
    planes = {"grey": 1, "grey_alpha": 2, "rgb": 3, "rgba": 4}[kind]
    a = rng.integers(300, 4000, (6, 9, planes), dtype=np.uint16)
    p = tmp_path / f"{kind}.png"
    _write_png16(p, a, greyscale=planes <= 2, alpha=planes in (2, 4))
    assert (read_png16(p) == a).all()
    colour = a[:, :, :3] if planes >= 3 else a[:, :, :1]
    lo, hi = int(colour.min()), int(colour.max())
    expect = np.floor((colour.astype(np.float64) - lo) * 255.0 / (hi - lo) + 0.5).astype(np.uint8)
    if planes <= 2:
        expect = np.repeat(expect, 3, axis=2)
    got = np.asarray(open_rgb(p))
    assert (got == expect).all()
    assert got.min() == 0 and got.max() == 255


def test_window_constant_image_is_black():
    assert (window_stored_range(np.full((2, 3), 700, np.uint16)) == 0).all()


def test_large_png_box_averaged_like_the_app(tmp_path):
    """Over 4096×4096 pixels a PNG is averaged by the smallest integer factor (the app streams it row by row)."""
    from cxr_export.images import LARGE_IMAGE_MAX_PIXELS, box_average, downsample_factor

    assert downsample_factor(10_000, 10_000) == 3 and downsample_factor(4096, 4096) == 1
    a = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7, 1)
    m = box_average(a, 3)
    assert m.shape == (2, 3, 1)
    assert m[0, 0, 0] == np.float32(a[:3, :3].mean()) and m[1, 2, 0] == np.float32(a[3:, 6:].mean())
    w = 4100
    big = (np.add.outer(np.arange(w), np.arange(w)) % 256).astype(np.uint8)
    p = tmp_path / "big.png"
    Image.fromarray(big, "L").save(p, compress_level=1)
    assert w * w > LARGE_IMAGE_MAX_PIXELS
    got = np.asarray(open_rgb(p))
    assert got.shape == (2050, 2050, 3)
    ref = np.floor(box_average(big[:, :, None], 2).astype(np.float64) + 0.5).astype(np.uint8)[:, :, 0]
    assert (got[:, :, 0] == ref).all()
