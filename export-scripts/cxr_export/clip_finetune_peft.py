"""The three fine-tuning methods of `cxr-export clip-finetune` on a CxrClip (clip_model.py), and their merge.

full   every parameter cxr-clip's own training leaves unlocked (CxrClipVision.lock(): the last ViT block(s), the
       final layernorm and the projection head; the whole text tower; logit_scale, logit_bias).
lora   LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv:2106.09685) through the
       `peft` library: W x + (alpha / r) B A x on every Linear layer that full trains (attention q/k/v/out and MLP
       fc1/fc2 of the text encoder layers and of the unlocked ViT blocks, the image MLP head, the text projection;
       the token embedding is not a Linear and stays frozen); A Kaiming,
       B zero (the start is the base model); only A, B (+ logit_scale, logit_bias) train.
qlora  QLoRA (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv:2305.14314): every
       Linear weight of the base (both towers, locked part included) is stored as frozen 4-bit NormalFloat (NF4,
       blocks of 64 with double-quantized absmax scalers) and dequantized on the fly in forward and backward; the
       same LoRA adapters as lora train in fp32 on top. NF4 comes from torchao's NF4Tensor (to_nf4 / linear_nf4,
       the implementation torchtune's QLoRA uses), which runs on the CPU: bitsandbytes' 4-bit layers target CUDA.

Merging gives a plain fp32 CxrClip with the architecture of the base, so it exports like the base: lora uses peft's
merge_and_unload (W + (alpha / r) B A); qlora first replaces every NF4 layer by an fp32 Linear holding its
dequantized weight, then merges the same way (so the export carries the NF4 rounding of the whole base).
"""

from __future__ import annotations

import functools
import math
import re

from .errors import ExportError

METHODS = ("full", "lora", "qlora")
NF4_BLOCK = 64  # QLoRA sec. 3: block size 64 for the weights, 256 for the double-quantized scalers
NF4_SCALER_BLOCK = 256


def _nf4():
    try:
        from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import NF4Tensor, linear_nf4, to_nf4
    except ImportError as exc:  # torchao moved the module between releases; requirements.txt pins one
        raise ExportError(f"--method qlora needs torchao's NF4Tensor (pip install -r export-scripts/requirements.txt):"
                          f" {exc}") from exc
    return NF4Tensor, linear_nf4, to_nf4


def nf4_block_sizes(numel: int) -> tuple[int, int] | None:
    """(block_size, scaler_block_size) for an NF4 weight of numel elements: blocks of 64; the scaler block is 256 or
    the largest power of two dividing the number of blocks (torchao requires it to divide). None when numel is not
    a multiple of 64 (the layer then stays fp32, and is reported)."""
    if numel % NF4_BLOCK:
        return None
    return NF4_BLOCK, math.gcd(numel // NF4_BLOCK, NF4_SCALER_BLOCK)


@functools.lru_cache(maxsize=None)
def _nf4_linear_class():
    """(NF4Linear, NF4Tensor), built once (isinstance checks need one class object)."""
    import torch

    NF4Tensor, linear_nf4, to_nf4 = _nf4()

    class NF4Linear(torch.nn.Linear):
        """A frozen Linear whose weight is a torchao NF4Tensor: y = x dequant(W)^T + b (bias kept fp32, frozen).
        Subclasses nn.Linear so that peft wraps it with its ordinary lora.Linear."""

        @classmethod
        def from_linear(cls, lin: torch.nn.Linear) -> "NF4Linear":
            sizes = nf4_block_sizes(lin.weight.numel())
            if sizes is None:
                raise ExportError(f"weight {tuple(lin.weight.shape)} is not a multiple of {NF4_BLOCK} elements")
            new = cls.__new__(cls)
            torch.nn.Module.__init__(new)
            new.in_features, new.out_features = lin.in_features, lin.out_features
            w = to_nf4(lin.weight.detach().contiguous(), *sizes)
            new.weight = torch.nn.Parameter(w, requires_grad=False)
            new.bias = None if lin.bias is None else torch.nn.Parameter(lin.bias.detach().clone(), requires_grad=False)
            return new

        def forward(self, x):
            y = linear_nf4(x, self.weight)
            return y if self.bias is None else y + self.bias

        def dequantized(self) -> torch.nn.Linear:
            """An fp32 nn.Linear holding dequant(W) and the bias."""
            lin = torch.nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
            with torch.no_grad():
                lin.weight.copy_(self.weight.get_original_weight().float())
                if self.bias is not None:
                    lin.bias.copy_(self.bias)
            return lin

    return NF4Linear, NF4Tensor


def _set_module(root, name: str, module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


def quantize_linears_nf4(model) -> dict:
    """Replaces every nn.Linear of model by a frozen NF4Linear (in place). Returns {quantized: n, kept_fp32: [names
    whose size is not a multiple of 64], weight_bytes_fp32, weight_bytes_nf4 (packed 4-bit data + scalers),
    relative_rms_error ||dequant(W) - W|| / ||W|| over all quantized weights}."""
    import torch

    NF4Linear, _ = _nf4_linear_class()
    names = [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]
    kept, fp32_bytes, nf4_bytes, err2, ref2 = [], 0, 0, 0.0, 0.0
    for n in names:
        lin = model.get_submodule(n)
        if nf4_block_sizes(lin.weight.numel()) is None:
            kept.append(n)
            continue
        q = NF4Linear.from_linear(lin)
        err2 += float((q.weight.get_original_weight().float() - lin.weight.detach()).pow(2).sum())
        ref2 += float(lin.weight.detach().pow(2).sum())
        fp32_bytes += lin.weight.numel() * 4
        w = q.weight
        nf4_bytes += sum(t.numel() * t.element_size() for t in (w.quantized_data, w.quantized_scalers,
                                                                 w.quantization_factor, w.scaler_mean))
        _set_module(model, n, q)
    return {"quantized": len(names) - len(kept), "kept_fp32": kept, "weight_bytes_fp32": fp32_bytes,
            "weight_bytes_nf4": nf4_bytes, "relative_rms_error": round(math.sqrt(err2 / max(ref2, 1e-30)), 5)}


def dequantize_nf4_linears(model) -> int:
    """Replaces every NF4Linear inside model (peft's base_layer included) by its fp32 nn.Linear; returns the count."""
    NF4Linear, _ = _nf4_linear_class()
    names = [n for n, m in model.named_modules() if isinstance(m, NF4Linear)]
    for n in names:
        _set_module(model, n, model.get_submodule(n).dequantized())
    return len(names)


def lora_targets(model) -> list[str]:
    """Full names of the Linear layers LoRA adapts: every Linear that full fine-tuning trains, i.e. attention q/k/v/out
    and MLP fc1/fc2 of the text encoder layers and of the unlocked ViT blocks, the image tower's MLP projection head
    and the text projection (with cxr-clip's default unlocked_blocks 0 the head is the only trainable image-side
    part: without it LoRA could not move the image embedding at all). The locked ViT blocks are not adapted."""
    import torch

    n_locked = model.vision.n_locked
    pat = re.compile(r"^(text\.text_model\.encoder\.layers\.\d+\.|vision\.vit\.layers\.(\d+)\.|vision\.head\.|"
                     r"text\.text_projection$)")
    out = []
    for n, m in model.named_modules():
        mt = pat.match(n)
        if mt and isinstance(m, torch.nn.Linear) and (mt.group(2) is None or int(mt.group(2)) >= n_locked):
            out.append(n)
    if not out:
        raise ExportError("no Linear layer to adapt in the text encoder layers, the unlocked ViT blocks or the heads")
    return out


def setup_method(model, method: str, r: int = 8, alpha: float = 16.0, dropout: float = 0.0):
    """Prepares model (a CxrClip, modified in place) for method. Returns (trainable, inner, info): trainable is what
    the optimizer and merge see (the CxrClip for full, a peft PeftModel for lora/qlora), inner the CxrClip whose
    encode_image / encode_text run the adapted model, info {method, targets, lora_r, lora_alpha, nf4: {...}}.
    Raises ExportError for an unknown method or r < 1."""
    if method not in METHODS:
        raise ExportError(f"unknown method {method!r} (known: {', '.join(METHODS)})")
    info: dict = {"method": method}
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        model.vision.lock()
        return model, model, info
    if r < 1:
        raise ExportError(f"--lora-r must be >= 1 (got {r})")
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(model)
    for p in model.parameters():
        p.requires_grad_(False)
    if method == "qlora":
        info["nf4"] = quantize_linears_nf4(model)
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
    peft_model = get_peft_model(model, cfg)
    inner = peft_model.base_model.model
    # the SigLIP temperature and bias (2 scalars) stay trainable: the new task has its own positive rate
    inner.logit_scale.requires_grad_(True)
    inner.logit_bias.requires_grad_(True)
    info.update(targets=targets, lora_r=r, lora_alpha=alpha, lora_dropout=dropout)
    return peft_model, inner, info


def trainable_parameters(module) -> list[tuple[str, "object"]]:
    """(name, parameter) pairs with requires_grad, in named_parameters order (the checkpoint's keys)."""
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


def count_parameters(module) -> dict:
    """{trainable, total} element counts; an NF4 weight counts its logical (unquantized) size."""
    ps = list(module.parameters())
    return {"trainable": sum(p.numel() for p in ps if p.requires_grad), "total": sum(p.numel() for p in ps)}


def expected_lora_parameters(model, r: int) -> int:
    """r (in + out) per adapted Linear (A is r x in, B is out x r), + 2 (logit_scale, logit_bias): the count
    setup_method must produce, computed from the unwrapped base."""
    return sum(r * (model.get_submodule(n).in_features + model.get_submodule(n).out_features)
               for n in lora_targets(model)) + 2


def merge(trainable, method: str):
    """The plain fp32 CxrClip with the adapters merged (W' = W + (alpha/r) B A; for qlora W = dequant(NF4)); for
    full the model itself. Modifies trainable in place (its unmerged forward is gone afterwards)."""
    import torch

    if method == "full":
        return trainable
    inner = trainable.base_model.model
    if method == "qlora":
        dequantize_nf4_linears(inner)
    merged = trainable.merge_and_unload()
    for n, p in merged.named_parameters():
        if not isinstance(p.data, torch.Tensor) or type(p.data) is not torch.Tensor:
            raise ExportError(f"merged parameter {n} is still a {type(p.data).__name__}")
        p.requires_grad_(False)
    return merged
