"""Reads and writes public/models/manifest.json. The shape is the TypeScript contract in
app/lib/models/manifest-types.ts; keep the two in step."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(models_dir: Path, path: Path, role: str) -> dict[str, Any]:
    """A ModelFile: path relative to models_dir (posix), bytes and sha256. External data next to an .onnx is listed too."""
    path = Path(path)
    record: dict[str, Any] = {
        "role": role,
        "path": path.relative_to(models_dir).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }
    external = path.with_name(path.name + ".data")
    if path.suffix == ".onnx" and external.exists():
        record["external_data"] = [
            {
                "path": external.relative_to(models_dir).as_posix(),
                "bytes": external.stat().st_size,
                "sha256": sha256_file(external),
            }
        ]
    return record


def parity_record(max_abs_diff: float, reference: str) -> dict[str, Any]:
    return {
        "max_abs_diff": float(max_abs_diff),
        "reference": reference,
        "checked_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load(models_dir: Path) -> dict[str, Any]:
    path = Path(models_dir) / MANIFEST_NAME
    if not path.exists():
        return {"version": 1, "models": []}
    with open(path) as fh:
        return json.load(fh)


def save(models_dir: Path, manifest: dict[str, Any]) -> None:
    """Atomic write: a crash never leaves a half-written manifest."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=models_dir, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; the manifest is served to browsers
    os.replace(tmp, models_dir / MANIFEST_NAME)


def upsert_entry(models_dir: Path, entry: dict[str, Any]) -> None:
    """Insert or replace the entry with entry['id']; variants of an existing entry not in the new one are kept
    (so `quantize` can add an int8 variant without re-exporting fp32)."""
    manifest = load(models_dir)
    models = manifest.setdefault("models", [])
    for i, existing in enumerate(models):
        if existing.get("id") == entry["id"]:
            variants = {**existing.get("variants", {}), **entry.get("variants", {})}
            models[i] = {**existing, **entry, "variants": variants}
            break
    else:
        models.append(entry)
    save(models_dir, manifest)


def add_variant(models_dir: Path, model_id: str, dtype: str, variant: dict[str, Any]) -> None:
    manifest = load(models_dir)
    for existing in manifest.get("models", []):
        if existing.get("id") == model_id:
            existing.setdefault("variants", {})[dtype] = variant
            save(models_dir, manifest)
            return
    raise KeyError(model_id)
