"""Images for `cxr-export ood` (ood.py): the seeded synthetic non-X-ray images, the DICOM files of ../shared/data/dicom
rendered with their window, the classifier's normalisation, and gather, which collects the in-distribution and
labelled out-of-distribution image sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ExportError


SYNTHETIC_KINDS = ("uniform-noise", "gaussian-noise-gray", "color-gradient", "checkerboard", "shapes", "stripes",
                   "smooth-color-noise", "solid")


def synthetic_images(per_kind: int = 12, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """[(name, uint8 RGB [H,W,3])]: seeded non-X-ray pictures of random size (noise, gradients, checkerboards,
    coloured shapes, stripes, smooth colour noise, flat colours), per_kind of each of SYNTHETIC_KINDS."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    out = []
    for kind in SYNTHETIC_KINDS:
        for i in range(per_kind):
            h, w = int(rng.integers(160, 640)), int(rng.integers(160, 640))
            if kind == "uniform-noise":
                a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            elif kind == "gaussian-noise-gray":
                g = np.clip(rng.normal(rng.uniform(60, 190), rng.uniform(10, 70), (h, w)), 0, 255).astype(np.uint8)
                a = np.repeat(g[..., None], 3, -1)
            elif kind == "color-gradient":
                yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
                c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
                t = ((xx / w) * rng.uniform(-1, 1) + (yy / h) * rng.uniform(-1, 1)) % 1.0
                a = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)
            elif kind == "checkerboard":
                s = int(rng.integers(8, 64))
                yy, xx = np.mgrid[0:h, 0:w]
                m = ((yy // s + xx // s) % 2).astype(bool)
                a = np.empty((h, w, 3), np.uint8)
                a[m], a[~m] = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            elif kind == "shapes":
                im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
                d = ImageDraw.Draw(im)
                for _ in range(int(rng.integers(3, 12))):
                    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
                    box = [x0, y0, x0 + int(rng.integers(10, w // 2 + 11)), y0 + int(rng.integers(10, h // 2 + 11))]
                    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
                    (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
                a = np.asarray(im)
            elif kind == "stripes":
                yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
                f, th = rng.uniform(0.02, 0.3), rng.uniform(0, np.pi)
                v = 0.5 + 0.5 * np.sin(f * (xx * np.cos(th) + yy * np.sin(th)))
                a = (v[..., None] * rng.uniform(80, 255, 3)).astype(np.uint8)
            elif kind == "smooth-color-noise":
                small = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
                im = Image.fromarray(small).resize((w, h), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
                a = np.asarray(im)
            else:  # solid
                a = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (h, w, 3)).copy()
            out.append((f"synthetic/{kind}-{i:02d}", np.ascontiguousarray(a, dtype=np.uint8)))
    return out


def dicom_rgb(path) -> np.ndarray:
    """A DICOM image as the app shows it, in numpy: Modality LUT (Rescale Slope/Intercept), the first VOI window
    (Window Center/Width, PS3.3 C.11.2.1.2, linear) or the full range, MONOCHROME1 inverted, uint8 RGB."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    a = ds.pixel_array.astype(np.float64)
    a = a * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if a.ndim == 3 and a.shape[-1] == 3:
        return np.clip(a, 0, 255).astype(np.uint8)
    c, w = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if c is not None and w is not None:
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        y = np.clip(((a - (c - 0.5)) / max(w - 1, 1) + 0.5), 0, 1)
    else:
        lo, hi = float(a.min()), float(a.max())
        y = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        y = 1 - y
    g = np.round(y * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, -1)


def normalize(rgb: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 RGB [H,W,3] -> the app's model input [3,H',W'] (PIL resize only when the size differs)."""
    from PIL import Image

    h, w = prep["size"]
    if rgb.shape[:2] != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC if prep["resize"] == "bicubic"
                                                     else Image.BILINEAR))
    a = rgb.astype(np.float32) / 255.0
    a = (a - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def gather(entry: dict, data: Path, shared: Path, synthetic_per_kind: int, seed: int):
    """The image sets as lists of lazily preprocessed inputs: train (fit), val, test, ood (with groups and names)."""
    from . import data as D
    from .classifier import preprocess_file
    from .train_classifier import LABELS

    prep = entry["preprocessing"]
    labels = entry["labels"]
    training = (entry.get("card") or {}).get("training") or {}
    items = D.kermany_split(data, "train")
    y = np.array([labels.index(lab) for _, lab in items])
    tr, va = D.stratified_split(y, float(training.get("val_frac", 0.1)), int(training.get("seed", 0)))
    if labels != LABELS:
        raise ExportError(f"labels {labels} differ from train-classifier's {LABELS}")

    def lazy(p):
        return lambda: preprocess_file(p, prep)

    test = D.kermany_split(data, "test")
    sets = {
        "train": ([lazy(items[i][0]) for i in tr], y[tr]),
        "val": ([lazy(items[i][0]) for i in va], y[va]),
        "test": ([lazy(p) for p, _ in test], np.array([labels.index(lab) for _, lab in test])),
    }
    ood, groups, names = [], [], []
    adult = sorted((shared / "data" / "cxr-lung-masks" / "images").glob("*"))
    if not adult:
        raise ExportError(f"no adult images under {shared}/data/cxr-lung-masks/images")
    for p in adult:
        ood.append(lazy(p))
        groups.append("adult")
        names.append(f"cxr-lung-masks/images/{p.name}")
    for p in sorted((shared / "data" / "dicom").glob("*.dcm")):
        ood.append(lambda p=p: normalize(dicom_rgb(p), prep))
        groups.append("dicom")
        names.append(f"dicom/{p.name}")
    for name, rgb in synthetic_images(synthetic_per_kind, seed):
        ood.append(lambda rgb=rgb: normalize(rgb, prep))
        groups.append("synthetic")
        names.append(name)
    return sets, (ood, np.array(groups), names)


# Non-chest images that ship inside packages (offline, open licences), never used to fit or to choose the threshold:
# they are the held-out check that a photograph or another modality or body part is flagged.
# (name, loader, source, licence); licences as stated in scikit-image's skimage.data docstrings and pydicom's
# data/test_files/README.txt (NEMA WG04 sample sets; pydicom is MIT).
SKIMAGE_IMAGES = (
    ("astronaut", "photograph, NASA (Eileen Collins)", "public domain"),
    ("camera", "photograph (Lav Varshney)", "CC0"),
    ("coffee", "photograph (Rachel Michetti)", "CC0"),
    ("chelsea", "photograph of a cat (Stefan van der Walt)", "CC0"),
    ("horse", "silhouette drawing (Andreas Preuss)", "CC0"),
    ("hubble_deep_field", "Hubble eXtreme Deep Field, NASA", "public domain"),
    ("coins", "Greek coins, Walters Art Museum", "no known copyright restrictions"),
    ("text", "photograph of printed text", "public domain"),
    ("rocket", "photograph, SpaceX", "public domain"),
    ("retina", "fundus photograph (Häggström)", "CC0"),
    ("brick", "brick wall texture, CC0Textures", "CC0"),
    ("grass", "grass texture", "CC0"),
    ("gravel", "gravel texture, CC0Textures", "CC0"),
    ("cell", "microscopy of a cell", "CC0"),
    ("immunohistochemistry", "immunohistochemistry slide", "no known copyright restrictions"),
    ("microaneurysms", "retinal image (Andreas Maier)", "CC0"),
    ("clock", "photograph of a clock (Stefan van der Walt)", "public domain"),
    ("shepp_logan_phantom", "Shepp-Logan CT phantom (numerical, Shepp & Logan 1974)", "BSD-3-Clause (scikit-image)"),
)
PYDICOM_IMAGES = (
    ("CT_small.dcm", "CT slice, 128x128 (NEMA WG04 CT1_UNC)", "MIT (pydicom test data; NEMA sample)"),
    ("MR_small.dcm", "MR slice, 64x64 (NEMA WG04 MR1_UNC)", "MIT (pydicom test data; NEMA sample)"),
    ("JPEG2000.dcm", "NM whole-body scan, JPEG 2000 (NEMA WG04 NM1_J2KI)", "MIT (pydicom test data; NEMA sample)"),
    ("693_J2KI.dcm", "CT slice, JPEG 2000", "MIT (pydicom test data)"),
    ("examples_overlay.dcm", "MR abdomen (Siemens sample with overlays, cropped)", "MIT (pydicom test data)"),
    ("examples_rgb_color.dcm", "ultrasound, RGB (NEMA US1_UNCR, cropped)", "MIT (pydicom test data; NEMA sample)"),
    ("examples_palette.dcm", "ultrasound, palette colour (OBXXXX1A, cropped)", "MIT (pydicom test data)"),
)


def package_images() -> list[tuple[str, np.ndarray, str, str]]:
    """[(name, uint8 RGB [H,W,3], source, licence)] of SKIMAGE_IMAGES and PYDICOM_IMAGES, offline (both packages
    ship these files). ExportError when scikit-image is missing (`pip install scikit-image`: export-scripts
    requirements)."""
    try:
        import skimage.data as sd
    except ImportError as e:
        raise ExportError("the non-chest check images come from scikit-image: pip install scikit-image") from e
    import pydicom
    from pydicom.data import get_testdata_file

    out = []
    for name, source, licence in SKIMAGE_IMAGES:
        a = np.asarray(getattr(sd, name)())
        if a.dtype != np.uint8:  # the phantom is float in [0, 1]
            a = np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)
        a = np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a[..., :3]
        out.append((f"skimage.data.{name}", np.ascontiguousarray(a), source, licence))
    for name, source, licence in PYDICOM_IMAGES:
        path = get_testdata_file(name, download=False)
        if path is None:
            raise ExportError(f"pydicom does not ship {name} offline")
        out.append((f"pydicom/{name}", dicom_rgb(path) if pydicom.dcmread(path, stop_before_pixels=True)
                    .PhotometricInterpretation.startswith("MONOCHROME") else color_dicom_rgb(path), source, licence))
    return out


def color_dicom_rgb(path) -> np.ndarray:
    """A colour DICOM (RGB, YBR_*, PALETTE COLOR) as uint8 RGB [H,W,3], first frame (pydicom's converters)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(str(path))
    a = ds.pixel_array
    pi = ds.PhotometricInterpretation
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        a = a[0]
    if pi == "PALETTE COLOR":
        a = apply_color_lut(a, ds)  # pydicom's pixel_array already returns YBR_* as RGB (its default conversion)
    a = np.asarray(a, np.float64)
    if a.max() > 255:
        a = a / a.max() * 255
    return np.ascontiguousarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
