"""The PyTorch side of `cxr-export bench` (bench.py): the PyTorch module each benchmarked graph was exported from,
as a callable on the same feeds, on the chosen device with gradients off."""

from __future__ import annotations

from .errors import ExportError


def torch_callable(g: dict, device: str = "cpu"):
    """(fn(feeds) -> {output: np.ndarray}, description) for a graph, or raise ExportError saying why none. On
    device 'cuda' the module and the inputs live on the GPU and every call ends with a synchronize (outputs copied
    back), so the time is the whole call."""
    import torch

    _DEV[0] = device

    fam, role, entry = g["family"], g["role"], g["entry"]
    if g["dtype"] != "fp32":
        raise ExportError(f"{g['dtype']} graph: no PyTorch equivalent (the fp32 row is the reference)")
    if fam == "classifier":
        from .classifier import OUTPUTS, wrap
        from .recover import arch_of, vit_from_onnx

        model, _ = vit_from_onnx(g["path"], arch_of(entry), entry.get("labels", ["NORMAL", "PNEUMONIA"]))
        m = wrap(model).to(device)

        def fn(feeds):
            with torch.no_grad():
                return dict(zip(OUTPUTS, (_n(t) for t in m(_t(feeds["pixel_values"])))))

        return fn, "ViTForImageClassification rebuilt from the ONNX weights (cxr_export.recover)"
    if entry.get("weights") != "random-fixture":
        raise ExportError(f"{fam} with {entry.get('weights')} weights: no PyTorch builder in the bench")
    size = "full" if "(full)" in str(entry.get("source", "")) or "full" in str(g["model"]) else "tiny"
    if fam == "clip":
        from .clip import _wrappers, build_random_biomedclip

        model, _, _ = build_random_biomedclip(size, seed=0)
        img, txt = (w.to(device) for w in _wrappers(model))
        if role == "image_encoder":
            return (lambda f: {"image_embeds": _no_grad(img, f["pixel_values"])}), "open_clip BiomedCLIP tiny, seed 0"
        if role == "text_encoder":
            return (lambda f: {"text_embeds": _no_grad(txt, f["input_ids"])}), "open_clip BiomedCLIP tiny, seed 0"
    if fam == "sam":
        from .sam import build_sam

        adapter, _ = build_sam("sam-vit-b", None, size, 0)
        adapter.encoder.to(device)
        adapter.decoder.to(device)
        if role == "image_encoder":
            return (lambda f: {"image_embeddings": _no_grad(adapter.encoder, f["pixel_values"])}), \
                "transformers SamModel tiny, seed 0"
        if role == "prompt_decoder":
            names = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]

            def dec(f):
                with torch.no_grad():
                    m, i = adapter.decoder(*[_t(f[k]) for k in names])
                return {"masks_low_res": _n(m), "iou_predictions": _n(i)}

            return dec, "transformers SamModel tiny, seed 0"
    if fam == "sd":
        from .sd import build_sd, wrappers

        parts = build_sd(size, 0)
        te, unet_w, vd = wrappers(parts["text_encoder"].to(device), parts["unet"].to(device), parts["vae"].to(device))
        if role == "text_encoder":
            return (lambda f: {"last_hidden_state": _no_grad(te, f["input_ids"])}), "diffusers tiny SD, seed 0"
        if role == "unet":
            u = unet_w(parts["unet"])

            def un(f):
                with torch.no_grad():
                    return {"out_sample": _n(u(*[_t(f[k]) for k in ("sample", "timestep", "encoder_hidden_states")]))}

            return un, "diffusers tiny SD UNet, seed 0"
        if role == "vae_decoder":
            return (lambda f: {"sample": _no_grad(vd, f["latent_sample"])}), "diffusers tiny SD VAE decoder, seed 0"
    raise ExportError(f"no PyTorch builder for {fam}/{role}")


_DEV = ["cpu"]


def _t(x):
    import torch

    return torch.from_numpy(x).to(_DEV[0])


def _n(t):
    import torch

    if _DEV[0] != "cpu":
        torch.cuda.synchronize()
    return t.detach().cpu().numpy()


def _no_grad(module, x):
    import torch

    with torch.no_grad():
        return _n(module(_t(x)))
