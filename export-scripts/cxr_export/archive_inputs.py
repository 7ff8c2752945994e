"""The inputs of `cxr-export label` / `segment-eval --engine ray`: a folder, a zip, or a CSV/Parquet list of paths or
object-store URIs (s3://, gs://, abfs://, hdfs://, through pyarrow.fs), as small picklable references that Ray
workers read themselves (the driver never holds the images).

- Folder: app/platform/node/read-input.ts walkFiles: recursive, names sorted per folder, symlinks followed, each real
  folder once, hidden entries skipped. image_id = the path relative to the folder, '/'-separated.
- Zip: entries in central-directory order as app/lib/batch/zip.ts lists them: unsafe names ('..', absolute, drive
  letters, backslashes) made safe as zip-paths.ts does and reported, junk entries (folders, __MACOSX, dot files,
  Thumbs.db) left out, duplicates, encrypted entries and methods other than store/deflate skipped and counted;
  image_id = the (safe) entry name.
- List: a CSV or Parquet with one of the columns path / uri / image_id / image / file / filename; relative local
  paths are resolved against the list's folder; image_id = the value as written. An optional label column
  (label / ground_truth / class / target / diagnosis) gives the ground truth.
- Ground truth otherwise: app/lib/batch/ground-truth.ts labelFromPath (the nearest folder named like a label).
- Decoding: images.py's rules (the app's): PNG/JPEG sniffed from the bytes; 16-bit PNGs windowed by stored range,
  EXIF orientation applied, large PNGs box-averaged (through images.open_rgb). DICOM is refused with a row error
  here (use `npm run label` for DICOM folders).
"""
from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import ExportError

#: app/lib/imaging/limits.ts DEFAULT_MAX_BYTES: a file over this is refused before it is read.
MAX_BYTES = 256 * 1024 * 1024
PATH_COLS = ["path", "uri", "image_id", "image", "file", "filename", "file_name"]
LABEL_COLS = ["label", "ground_truth", "class", "target", "diagnosis"]


def walk_files(root: Path) -> list[Path]:
    """walkFiles of read-input.ts (see the module comment)."""
    out: list[Path] = []
    seen: set[str] = set()

    def rec(d: Path):
        real = os.path.realpath(d)
        if real in seen:
            return
        seen.add(real)
        for name in sorted(os.listdir(d)):
            if name.startswith("."):
                continue
            p = d / name
            if p.is_dir():
                rec(p)
            elif p.is_file():
                out.append(p)

    rec(root)
    return out


def is_junk_entry(path: str) -> bool:
    segs = path.split("/")
    return path.endswith("/") or "__MACOSX" in segs or any(s.startswith(".") for s in segs) or segs[-1] == "Thumbs.db"


def label_from_path(path: str, labels: list[str]) -> str | None:
    """ground-truth.ts labelFromPath: the label named by the nearest directory segment (case-insensitive)."""
    for seg in reversed(path.replace("\\", "/").split("/")[:-1]):
        for lab in labels:
            if lab.lower() == seg.lower():
                return lab
    return None


def truth_table(path, labels: list[str]):
    """ground-truth.ts groundTruthFromCsv: a CSV with an image column (image_id/path/filename/file/image/file_name/
    name) and a label column (label/ground_truth/class/target/diagnosis); labels canonicalised to `labels`
    case-insensitively, 0/1/... to labels[i]. Returns lookup(image_id) -> label or None: the whole relative path,
    else a path suffix match, else the basename, else the stem. ExportError naming the missing column."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = [r for r in csv.reader(f) if r and r != [""]]
    if not rows:
        raise ExportError("The ground-truth CSV is empty")
    head = [h.strip().lower() for h in rows[0]]
    img_cols = ["image_id", "path", "filename", "file", "image", "file_name", "name"]
    ic = next((i for i, h in enumerate(head) if h in img_cols), -1)
    lc = next((i for i, h in enumerate(head) if h in LABEL_COLS), -1)
    if ic < 0 or lc < 0:
        need = f"an image column (one of {', '.join(img_cols)})" if ic < 0 else f"a label column (one of {', '.join(LABEL_COLS)})"
        raise ExportError(f"The ground-truth CSV needs {need}; found {', '.join(rows[0])}")
    norm = lambda p: p.replace("\\", "/").removeprefix("./").lower()  # noqa: E731
    base = lambda p: norm(p).rsplit("/", 1)[-1]  # noqa: E731
    stem = lambda p: base(p)[:base(p).rfind(".")] if base(p).rfind(".") > 0 else base(p)  # noqa: E731
    full, by_base, by_stem = {}, {}, {}
    for r in rows[1:]:
        img, lab = (r[ic] if ic < len(r) else "").strip(), (r[lc] if lc < len(r) else "").strip()
        if not img or not lab:
            continue
        canon = next((x for x in labels if x.lower() == lab.lower()), None)
        lab = canon or (labels[int(lab)] if lab.isdigit() and int(lab) < len(labels) else lab)
        full[norm(img)] = by_base[base(img)] = by_stem[stem(img)] = lab

    def lookup(p: str) -> str | None:
        n = norm(p)
        if n in full:
            return full[n]
        for k, v in full.items():  # a CSV path may be relative to another root: match by suffix
            if n.endswith("/" + k) or k.endswith("/" + n):
                return v
        return by_base.get(base(p)) or by_stem.get(stem(p))

    return lookup


def list_inputs(src: str, labels: list[str], truth=None) -> tuple[list[dict], list[str]]:
    """(rows [{index, image_id, ref, ground_truth}], notes). `ref` is (kind, location, member): ('file', path, None),
    ('zip', zip path, entry name) or ('uri', uri, None). ExportError when src is none of folder, zip, CSV, Parquet."""
    p = Path(src)
    notes: list[str] = []
    if p.is_dir():
        items = [(f.relative_to(p).as_posix(), ("file", str(f), None), None) for f in walk_files(p)]
    elif p.is_file() and zipfile.is_zipfile(p):
        items, zip_notes = _list_zip(p)
        notes += zip_notes
    elif p.suffix.lower() in (".csv", ".parquet", ".pq") and p.is_file():
        items = _list_table(p)
    elif "://" in src:
        raise ExportError(f"{src}: a URI input must be listed in a CSV or Parquet file (one path/uri per row)")
    else:
        raise ExportError(f"{src}: not a folder, a zip, or a .csv/.parquet list of images")
    gt_of = truth or (lambda iid: label_from_path(iid, labels))  # --truth replaces the folder names, as in label.ts
    rows = [{"index": i, "image_id": iid, "ref": ref, "ground_truth": gt if gt is not None else gt_of(iid)}
            for i, (iid, ref, gt) in enumerate(items)]
    return rows, notes


def unsafe_entry_reason(name: str) -> str | None:
    """zip-paths.ts unsafeEntryReason: why a zip entry name could point outside a folder, or None."""
    import re

    r = []
    segs = re.split(r"[\\/]+", name)
    if "\\" in name:
        r.append("backslashes")
    if re.match(r"^[A-Za-z]:", name):
        r.append("a drive letter")
    if re.match(r"^[\\/]", name):
        r.append("an absolute path")
    if ".." in segs:
        r.append("'..' segments")
    elif "." in segs[:-1] or segs[-1] == "." or re.search(r"[^\\/][\\/]{2,}", name):
        r.append("'.' or empty segments")
    if "\0" in name:
        r.append("a NUL character")
    return ", ".join(r) or None


def sanitize_entry_path(name: str) -> str:
    """zip-paths.ts sanitizeEntryPath (Python zipfile's extraction rule, '\\' as a separator): '' when nothing is left."""
    import re

    body = re.sub(r"^[A-Za-z]:", "", name.replace("\0", ""))
    segs = [x for x in re.split(r"[\\/]+", body) if x not in ("", ".", "..")]
    return "/".join(segs) + ("/" if segs and re.search(r"[\\/]$", name) else "")


def _list_zip(p: Path) -> tuple[list[tuple], list[str]]:
    """Entries of a zip as zip.ts listZip takes them: unsafe names made safe (reported), junk and folders left out,
    duplicates, encrypted entries and methods other than store/deflate skipped with the reason (the stored name is
    still what is read)."""
    items, notes, seen = [], [], set()
    with zipfile.ZipFile(p) as z:
        infos = z.infolist()
    for i in infos:
        unsafe = unsafe_entry_reason(i.filename)
        path = sanitize_entry_path(i.filename) if unsafe else i.filename
        if unsafe and not path:
            notes.append(f"skip {i.filename}: unsafe name ({unsafe}) with nothing left once made safe; skipped")
            continue
        if is_junk_entry(path):
            continue
        if path in seen:
            notes.append(f"skip {i.filename}: " + (f"unsafe name ({unsafe}); its safe form {path} is already another "
                                                   "entry's name; skipped" if unsafe else "a second entry of the same name; skipped"))
            continue
        seen.add(path)
        if i.flag_bits & 0x1 or i.compress_type == 99:
            notes.append(f"skip {path}: the entry is encrypted (password-protected zips are not supported)")
        elif i.compress_type not in (0, 8):
            notes.append(f"skip {path}: compression method {i.compress_type} is not supported; re-zip with Deflate or store")
        else:
            if unsafe:
                notes.append(f"renamed {i.filename!r} -> {path}: {unsafe}")
            items.append((path, ("zip", str(p.resolve()), i.filename), None))
    return items, notes


def _list_table(p: Path) -> list[tuple]:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    t = pq.read_table(p) if p.suffix.lower() != ".csv" else pcsv.read_csv(p)
    cols = {c.lower(): c for c in t.column_names}
    pc = next((cols[c] for c in PATH_COLS if c in cols), None)
    if pc is None:
        raise ExportError(f"{p}: no image column (one of {', '.join(PATH_COLS)}); columns are {', '.join(t.column_names)}")
    lc = next((cols[c] for c in LABEL_COLS if c in cols), None)
    paths = [str(x) for x in t.column(pc).to_pylist()]
    gts = [None if x is None else str(x) for x in t.column(lc).to_pylist()] if lc else [None] * len(paths)
    out = []
    for v, gt in zip(paths, gts):
        if "://" in v and not v.startswith("file://"):
            ref = ("uri", v, None)
        else:
            local = Path(v[7:] if v.startswith("file://") else v)
            ref = ("file", str(local if local.is_absolute() else (p.parent / local)), None)
        out.append((v, ref, gt))
    return out


class Reader:
    """Reads a ref's bytes (size checked before the read); keeps zip handles and pyarrow filesystems open."""

    def __init__(self):
        self._zips: dict[str, zipfile.ZipFile] = {}
        self._fs: dict[str, object] = {}

    def read(self, ref) -> bytes:
        kind, loc, member = ref
        if kind == "file":
            size = os.stat(loc).st_size
            _check_size(size, loc)
            with open(loc, "rb") as f:
                return f.read(MAX_BYTES + 1)
        if kind == "zip":
            z = self._zips.get(loc) or self._zips.setdefault(loc, zipfile.ZipFile(loc))
            info = z.getinfo(member)
            _check_size(info.file_size, member)
            with z.open(info) as f:
                data = f.read(MAX_BYTES + 1)
            _check_size(len(data), member)
            return data
        from pyarrow import fs as pafs

        scheme = loc.split("://", 1)[0]
        if scheme not in self._fs:
            self._fs[scheme] = pafs.FileSystem.from_uri(loc)[0]
        fs_, path = self._fs[scheme], pafs.FileSystem.from_uri(loc)[1]
        info = fs_.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(loc)
        _check_size(info.size, loc)
        with fs_.open_input_stream(path) as f:
            return f.read()


def _check_size(size: int, name: str) -> None:
    if size > MAX_BYTES:
        raise ExportError(f"too-large: {name} is {size} bytes, over the {MAX_BYTES}-byte limit")


def sniff(b: bytes) -> str | None:
    """imaging sniffFormat: 'png', 'jpeg', 'dicom' or None."""
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if b[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if len(b) >= 132 and b[128:132] == b"DICM":
        return "dicom"
    return None


def decode_rgb(b: bytes) -> np.ndarray:
    """Image bytes -> uint8 [H,W,3] by images.open_rgb (the app's decoding rules). Raises ValueError with the cause."""
    from PIL import Image

    from .images import exif_orientation, ORIENTATION_TRANSPOSE, open_rgb

    fmt = sniff(b)
    if fmt is None:
        raise ValueError("not an image (neither PNG, JPEG nor DICOM)")
    if fmt == "dicom":
        raise ValueError("DICOM is not decoded by the Python engine (label DICOM folders with npm run label)")
    if fmt == "png" and (b[24] == 16 or int.from_bytes(b[16:20], "big") * int.from_bytes(b[20:24], "big") > 4096 * 4096):
        # 16-bit and very large PNGs take images.py's file path (pypng reads, box averaging)
        with tempfile.NamedTemporaryFile(suffix=".png") as t:
            t.write(b)
            t.flush()
            return np.asarray(open_rgb(t.name), dtype=np.uint8).copy()
    try:
        with Image.open(io.BytesIO(b)) as im:
            o = exif_orientation(im)
            out = im.convert("RGB")
    except Exception as e:  # PIL's own message names the cause (truncated, corrupt)
        raise ValueError(f"{fmt}: could not be decoded: {e}") from e
    method = ORIENTATION_TRANSPOSE.get(o)
    if method:
        out = out.transpose(getattr(Image.Transpose, method))
    return np.asarray(out, dtype=np.uint8).copy()
