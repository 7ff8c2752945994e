"""Validation of local transformers checkpoint folders, shared by every export that takes one, so a wrong folder
fails the same clear way before any weights are read (and before anything is written)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import ExportError


def transformers_config(path: str | Path, expected_model_types: tuple[str, ...], flag: str = "--checkpoint",
                        what: str | None = None) -> tuple[Path, dict[str, Any]]:
    """(folder, parsed config.json) of a transformers checkpoint whose model_type is one of expected_model_types.
    `flag` names the command-line option in messages; `what` the expected model class (default: the first type)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ExportError(f"{flag} {path}: no such folder (hub ids cannot be downloaded here)")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"{flag} {path}: no config.json (expected a transformers {what or expected_model_types[0]} "
                          "folder)")
    try:
        config = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise ExportError(f"{flag} {path}: config.json is not JSON ({exc})") from exc
    model_type = config.get("model_type")
    if model_type not in expected_model_types:
        raise ExportError(f"{flag} {path}: config.json says model_type {model_type!r}, expected "
                          f"{' or '.join(repr(t) for t in expected_model_types)}"
                          + (f" ({what})" if what else ""))
    return folder, config
