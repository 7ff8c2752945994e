"""One command-line entry, one subcommand per job. Each subcommand lives in its own module, which exposes
`register(subparsers)` and sets `func` on its parser. A listed module that cannot be imported is an error naming the
module and the cause: a subcommand never silently disappears from --help."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ExportError

class SubcommandImportError(ImportError):
    """A subcommand's module failed to import (a bug or a missing dependency), raised instead of hiding it."""


# (subcommand, module) in the order --help lists them.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("data", "cxr_export.data"),
    ("train-classifier", "cxr_export.train_classifier"),
    ("train-segmenter", "cxr_export.train_segmenter"),
    ("train-generator", "cxr_export.train_generator"),
    ("train-clip", "cxr_export.train_clip"),
    ("classifier", "cxr_export.classifier"),
    ("clip", "cxr_export.clip"),
    ("clip-finetune", "cxr_export.clip_finetune"),
    ("clip-finetune-bench", "cxr_export.clip_finetune_bench"),
    ("sam", "cxr_export.sam"),
    ("lora", "cxr_export.lora"),
    ("sd", "cxr_export.sd"),
    ("quantize", "cxr_export.quantize"),
    ("quantize-search", "cxr_export.quantize_search"),
    ("fixtures", "cxr_export.fixtures"),
    ("hub-fixtures", "cxr_export.hub_fixtures"),
    ("ood", "cxr_export.ood"),
    ("heatmaps", "cxr_export.heatmaps"),
    ("bench", "cxr_export.bench"),
    ("variant-goldens", "cxr_export.variant_goldens"),
    ("label", "cxr_export.label_job"),
    ("segment-eval", "cxr_export.segment_eval_ray"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxr-export",
        description="Prepare data, train, merge, quantize and export parity-checked ONNX graphs for cxr-studio.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise SubcommandImportError(f"cxr-export: the '{name}' subcommand ({module_name}) cannot be imported: "
                                        f"{type(exc).__name__}: {exc}") from exc
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        args.func(args)
    except ExportError as exc:
        print(f"cxr-export {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0
