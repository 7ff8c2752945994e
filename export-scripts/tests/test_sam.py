"""cxr-export sam: one prompt interface for sam-vit-b / medsam / mobilesam / sam2-tiny (tiny random weights)."""

import json

import numpy as np
import pytest
import torch

from cxr_export.cli import main
from cxr_export.errors import ExportError
from cxr_export.sam import build_sam, export_sam, sample_inputs


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


def _prompts(adapter, x):
    """(adapter feeds, transformers kwargs) for a points prompt and a box prompt."""
    pts = torch.from_numpy(x["point_coords"][:, :-1])
    lab = torch.from_numpy(x["point_labels"][:, :-1]).long()
    bc, bl = torch.from_numpy(x["box_coords"]), torch.from_numpy(x["box_labels"])
    if adapter.padding_point == "always":
        bc = torch.cat([bc, torch.zeros(1, 1, 2)], 1)
        bl = torch.cat([bl, -torch.ones(1, 1)], 1)
    return [
        ((torch.from_numpy(x["point_coords"]), torch.from_numpy(x["point_labels"])),
         dict(points=pts[:, None], labels=lab[:, None])),
        ((bc, bl), dict(boxes=torch.from_numpy(x["box_coords"]).reshape(1, 1, 4))),
    ]


@pytest.mark.parametrize("arch", ["sam-vit-b", "medsam", "mobilesam", "sam2-tiny"])
def test_sam_tiny_matches_transformers_and_exports(arch, tmp_path):
    adapter, info = build_sam(arch, None, "tiny", seed=0)
    x = sample_inputs(info, seed=3)
    with torch.no_grad():
        feats = adapter.encoder(torch.from_numpy(x["pixel_values"]))
    feats = feats if isinstance(feats, tuple) else (feats,)
    assert feats[-1].std() > 0.1  # re-initialised weights give a real signal
    empty_mask = torch.zeros(1, 1, info["mask_size"], info["mask_size"])
    for (coords, labels), ref_kwargs in _prompts(adapter, x):
        with torch.no_grad():
            masks, iou = adapter.decoder(*feats, coords, labels, empty_mask, torch.tensor([0.0]))
        ref_masks, ref_iou = adapter.reference(feats, **ref_kwargs)
        assert masks.shape == (1, 3, info["mask_size"], info["mask_size"]) and iou.shape == (1, 3)
        assert masks.std() > 1e-2
        assert torch.allclose(masks, ref_masks, atol=1e-5) and torch.allclose(iou, ref_iou, atol=1e-5)

    out = tmp_path / "models"
    entry = export_sam(adapter, info, out, f"tiny-{arch}", "random-fixture", source="test")
    par = entry["config"]["parity"]
    assert par["image_encoder"] <= 1e-4 and par["prompt_decoder"] <= 1e-4, par
    io = entry["io"]
    assert io["prompt_decoder"]["inputs"][-4:] == ["point_coords", "point_labels", "mask_input", "has_mask_input"]
    assert io["prompt_decoder"]["outputs"] == ["masks_low_res", "iou_predictions"]
    assert io["image_encoder"]["outputs"][-1] == "image_embeddings"
    if arch == "sam2-tiny":
        assert io["image_encoder"]["outputs"] == ["high_res_feats_0", "high_res_feats_1", "image_embeddings"]
        assert entry["config"]["append_padding_point"] == "always"
    assert (out / f"tiny-{arch}" / "prompt_decoder.onnx").exists()


def test_sam_decoder_takes_any_number_of_points(tmp_path):
    from cxr_export.clip import run_onnx

    adapter, info = build_sam("sam-vit-b", None, "tiny", seed=0)
    export_sam(adapter, info, tmp_path, "s", "random-fixture")
    emb = run_onnx(tmp_path / "s" / "image_encoder.onnx",
                   {"pixel_values": np.zeros((1, 3, 64, 64), np.float32)})["image_embeddings"]
    for n in (1, 5):
        out = run_onnx(tmp_path / "s" / "prompt_decoder.onnx", {
            "image_embeddings": emb, "point_coords": np.full((1, n, 2), 10.0, np.float32),
            "point_labels": np.ones((1, n), np.float32), "mask_input": np.zeros((1, 1, 32, 32), np.float32),
            "has_mask_input": np.zeros(1, np.float32)})
        assert out["masks_low_res"].shape == (1, 3, 32, 32)


def test_single_mask_mode(tmp_path):
    assert main(["sam", "--arch", "sam-vit-b", "--random-init", "--size", "tiny", "--single-mask",
                 "--out-dir", str(tmp_path), "--id", "s1"]) == 0
    e = json.loads((tmp_path / "manifest.json").read_text())["models"][0]
    assert e["config"]["num_masks"] == 1 and e["config"]["multimask_output"] is False
    assert e["weights"] == "random-fixture"


def test_local_checkpoint_folder(tmp_path):
    """--checkpoint DIR (save_pretrained layout, as MedSAM / SAM ship) exports with the folder's weights and norm."""
    adapter, _ = build_sam("sam-vit-b", None, "tiny", seed=5)
    ck = tmp_path / "medsam-tiny"
    adapter.model.save_pretrained(ck)
    (ck / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5],
                                                             "image_std": [0.25, 0.25, 0.25]}))
    out = tmp_path / "models"
    assert main(["sam", "--arch", "medsam", "--checkpoint", str(ck), "--out-dir", str(out)]) == 0
    e = json.loads((out / "manifest.json").read_text())["models"][0]
    assert e["id"] == "medsam" and e["weights"] == "pretrained" and e["preprocessing"]["std"] == [0.25] * 3
    assert e["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    loaded, _ = build_sam("medsam", str(ck), "tiny", seed=0)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.encoder(x), adapter.encoder(x), atol=1e-6)


def test_wrong_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "ck"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "models"
    assert main(["sam", "--arch", "medsam", "--checkpoint", str(bad), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "model_type 'bert'" in err and "'sam'" in err
    assert not out.exists()
    with pytest.raises(ExportError, match="mobile_sam.pt"):
        build_sam("mobilesam", str(bad), "tiny", 0)
    assert main(["sam", "--arch", "sam-vit-b", "--out-dir", str(out)]) == 1  # neither checkpoint nor random


def _original_mobilesam_shapes():
    """Key -> shape of MobileSAM's build_sam_vit_t() state dict, re-declared from the original module code
    (mobile_sam/modeling/tiny_vit_sam.py, prompt_encoder.py, mask_decoder.py, transformer.py), independently of
    cxr_export's mapping."""
    shapes = {}

    def conv_bn(prefix, cin, cout, ks, groups=1):  # Conv2d_BN: Sequential(('c', Conv2d no bias), ('bn', BatchNorm2d))
        shapes[f"{prefix}.c.weight"] = (cout, cin // groups, ks, ks)
        for n in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.bn.{n}"] = (cout,)
        shapes[f"{prefix}.bn.num_batches_tracked"] = ()

    def linear(prefix, cin, cout):
        shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (cout, cin), (cout,)

    def norm(prefix, c):
        shapes[f"{prefix}.weight"], shapes[f"{prefix}.bias"] = (c,), (c,)

    # TinyViT(img_size=1024, num_classes=1000, embed_dims=[64,128,160,320], depths=[2,2,6,2], num_heads=[2,4,5,10],
    #         window_sizes=[7,7,14,7], mlp_ratio=4, mbconv_expand_ratio=4)
    e = "image_encoder"
    dims, depths, heads, wins = [64, 128, 160, 320], [2, 2, 6, 2], [2, 4, 5, 10], [7, 7, 14, 7]
    conv_bn(f"{e}.patch_embed.seq.0", 3, 32, 3)
    conv_bn(f"{e}.patch_embed.seq.2", 32, 64, 3)
    for i in range(4):
        d = dims[i]
        for j in range(depths[i]):
            b = f"{e}.layers.{i}.blocks.{j}"
            if i == 0:  # ConvLayer of MBConv
                conv_bn(f"{b}.conv1", d, 4 * d, 1)
                conv_bn(f"{b}.conv2", 4 * d, 4 * d, 3, groups=4 * d)
                conv_bn(f"{b}.conv3", 4 * d, d, 1)
            else:  # TinyViTBlock: Attention(dim, head_dim, heads, attn_ratio=1), Mlp, local_conv
                shapes[f"{b}.attn.attention_biases"] = (heads[i], wins[i] * wins[i])
                norm(f"{b}.attn.norm", d)
                linear(f"{b}.attn.qkv", d, 3 * d)
                linear(f"{b}.attn.proj", d, d)
                norm(f"{b}.mlp.norm", d)
                linear(f"{b}.mlp.fc1", d, 4 * d)
                linear(f"{b}.mlp.fc2", 4 * d, d)
                conv_bn(f"{b}.local_conv", d, d, 3, groups=d)
        if i < 3:  # PatchMerging(dim, out_dim)
            o = dims[i + 1]
            conv_bn(f"{e}.layers.{i}.downsample.conv1", d, o, 1)
            conv_bn(f"{e}.layers.{i}.downsample.conv2", o, o, 3, groups=o)
            conv_bn(f"{e}.layers.{i}.downsample.conv3", o, o, 1)
    norm(f"{e}.norm_head", 320)
    linear(f"{e}.head", 320, 1000)
    shapes[f"{e}.neck.0.weight"] = (256, 320, 1, 1)
    norm(f"{e}.neck.1", 256)
    shapes[f"{e}.neck.2.weight"] = (256, 256, 3, 3)
    norm(f"{e}.neck.3", 256)
    # PromptEncoder(embed_dim=256, mask_in_chans=16)
    p = "prompt_encoder"
    shapes[f"{p}.pe_layer.positional_encoding_gaussian_matrix"] = (2, 128)
    for i in range(4):
        shapes[f"{p}.point_embeddings.{i}.weight"] = (1, 256)
    shapes[f"{p}.not_a_point_embed.weight"] = (1, 256)
    shapes[f"{p}.no_mask_embed.weight"] = (1, 256)
    shapes[f"{p}.mask_downscaling.0.weight"], shapes[f"{p}.mask_downscaling.0.bias"] = (4, 1, 2, 2), (4,)
    norm(f"{p}.mask_downscaling.1", 4)
    shapes[f"{p}.mask_downscaling.3.weight"], shapes[f"{p}.mask_downscaling.3.bias"] = (16, 4, 2, 2), (16,)
    norm(f"{p}.mask_downscaling.4", 16)
    shapes[f"{p}.mask_downscaling.6.weight"], shapes[f"{p}.mask_downscaling.6.bias"] = (256, 16, 1, 1), (256,)
    # MaskDecoder(transformer_dim=256, TwoWayTransformer(depth=2, mlp_dim=2048, heads=8), iou_head_depth=3)
    m = "mask_decoder"

    def attention(prefix, internal):
        for n in ("q_proj", "k_proj", "v_proj"):
            linear(f"{prefix}.{n}", 256, internal)
        linear(f"{prefix}.out_proj", internal, 256)

    for i in range(2):
        t = f"{m}.transformer.layers.{i}"
        attention(f"{t}.self_attn", 256)
        attention(f"{t}.cross_attn_token_to_image", 128)
        attention(f"{t}.cross_attn_image_to_token", 128)
        for n in range(1, 5):
            norm(f"{t}.norm{n}", 256)
        linear(f"{t}.mlp.lin1", 256, 2048)
        linear(f"{t}.mlp.lin2", 2048, 256)
    attention(f"{m}.transformer.final_attn_token_to_image", 128)
    norm(f"{m}.transformer.norm_final_attn", 256)
    shapes[f"{m}.iou_token.weight"], shapes[f"{m}.mask_tokens.weight"] = (1, 256), (4, 256)
    shapes[f"{m}.output_upscaling.0.weight"], shapes[f"{m}.output_upscaling.0.bias"] = (256, 64, 2, 2), (64,)
    norm(f"{m}.output_upscaling.1", 64)
    shapes[f"{m}.output_upscaling.3.weight"], shapes[f"{m}.output_upscaling.3.bias"] = (64, 32, 2, 2), (32,)
    for i in range(4):
        for j, (cin, cout) in enumerate([(256, 256), (256, 256), (256, 32)]):
            linear(f"{m}.output_hypernetworks_mlps.{i}.layers.{j}", cin, cout)
    for j, (cin, cout) in enumerate([(256, 256), (256, 256), (256, 4)]):
        linear(f"{m}.iou_prediction_head.layers.{j}", cin, cout)
    return shapes


def _random_mobilesam_checkpoint(path):
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in _original_mobilesam_shapes().items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.randint(1, 10**6, (), generator=g)
        else:  # every value distinct, so each of ours can be traced back to exactly one original tensor
            sd[k] = torch.randn(shape, generator=g) * 0.02 + (0.5 if k.endswith("running_var") else 0.0)
            if k.endswith("running_var"):
                sd[k] = sd[k].abs() + 0.1
    torch.save(sd, path)
    return sd


def test_mobilesam_original_checkpoint_loads(tmp_path):
    """--checkpoint mobile_sam.pt (original segment-anything / TinyViT layout) fills every tensor of ours, each
    from the original tensor of the same role."""
    ck = tmp_path / "mobile_sam.pt"
    orig = _random_mobilesam_checkpoint(ck)
    adapter, info = build_sam("mobilesam", str(ck), "full", seed=0)
    assert info["image_size"] == 1024 and info["embedding_size"] == 64 and info["embedding_dim"] == 256
    ours = {"image_encoder." + k: v for k, v in adapter.encoder.vision_encoder.state_dict().items()}
    ours.update(adapter.model.state_dict())
    by_value = {}
    for k, v in orig.items():
        by_value.setdefault((tuple(v.shape), v.flatten()[:8].tolist().__repr__()), []).append(k)

    def src(k):
        v = ours[k]
        hits = [o for o in by_value.get((tuple(v.shape), v.flatten()[:8].tolist().__repr__()), [])
                if torch.equal(orig[o], v)]
        assert len(hits) == 1, (k, hits)
        return hits[0]

    used = {src(k) for k in ours}
    unused = set(orig) - used
    assert unused == {"image_encoder.head.weight", "image_encoder.head.bias"}, unused  # TinyViT's classifier
    # roles, spelled out for the renamed and same-shaped tensors a permutation could swap
    expect = {
        "image_encoder.trunk.patch_embed.conv1.conv.weight": "image_encoder.patch_embed.seq.0.c.weight",
        "image_encoder.trunk.patch_embed.conv2.bn.running_var": "image_encoder.patch_embed.seq.2.bn.running_var",
        "image_encoder.trunk.stages.0.blocks.1.conv3.bn.bias": "image_encoder.layers.0.blocks.1.conv3.bn.bias",
        "image_encoder.trunk.stages.1.downsample.conv1.conv.weight": "image_encoder.layers.0.downsample.conv1.c.weight",
        "image_encoder.trunk.stages.3.downsample.conv3.conv.weight": "image_encoder.layers.2.downsample.conv3.c.weight",
        "image_encoder.trunk.stages.2.blocks.5.attn.qkv.weight": "image_encoder.layers.2.blocks.5.attn.qkv.weight",
        "image_encoder.trunk.stages.2.blocks.4.attn.attention_biases":
            "image_encoder.layers.2.blocks.4.attn.attention_biases",
        "image_encoder.trunk.stages.3.blocks.1.local_conv.conv.weight":
            "image_encoder.layers.3.blocks.1.local_conv.c.weight",
        "image_encoder.trunk.head.norm.weight": "image_encoder.norm_head.weight",
        "image_encoder.neck.2.weight": "image_encoder.neck.2.weight",
        "image_encoder.neck.3.bias": "image_encoder.neck.3.bias",
        "shared_image_embedding.positional_embedding": "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "prompt_encoder.point_embed.2.weight": "prompt_encoder.point_embeddings.2.weight",
        "prompt_encoder.mask_embed.layer_norm2.weight": "prompt_encoder.mask_downscaling.4.weight",
        "prompt_encoder.mask_embed.conv3.weight": "prompt_encoder.mask_downscaling.6.weight",
        "mask_decoder.transformer.layers.1.layer_norm3.weight": "mask_decoder.transformer.layers.1.norm3.weight",
        "mask_decoder.transformer.layers.0.cross_attn_image_to_token.k_proj.weight":
            "mask_decoder.transformer.layers.0.cross_attn_image_to_token.k_proj.weight",
        "mask_decoder.transformer.layer_norm_final_attn.bias": "mask_decoder.transformer.norm_final_attn.bias",
        "mask_decoder.upscale_conv1.weight": "mask_decoder.output_upscaling.0.weight",
        "mask_decoder.upscale_layer_norm.weight": "mask_decoder.output_upscaling.1.weight",
        "mask_decoder.upscale_conv2.bias": "mask_decoder.output_upscaling.3.bias",
        "mask_decoder.iou_prediction_head.proj_in.weight": "mask_decoder.iou_prediction_head.layers.0.weight",
        "mask_decoder.iou_prediction_head.layers.0.weight": "mask_decoder.iou_prediction_head.layers.1.weight",
        "mask_decoder.output_hypernetworks_mlps.3.layers.0.bias":
            "mask_decoder.output_hypernetworks_mlps.3.layers.1.bias",
        "mask_decoder.output_hypernetworks_mlps.0.proj_out.weight":
            "mask_decoder.output_hypernetworks_mlps.0.layers.2.weight",
    }
    for k, o in expect.items():
        assert src(k) == o, (k, src(k), o)
    # every block / stage / layer index is carried over unchanged (downsample: end of layer i = start of stage i+1)
    for k in ours:
        if "trunk.stages." in k:
            o = src(k)
            stage = int(k.split("stages.")[1].split(".")[0])
            layer = int(o.split("layers.")[1].split(".")[0])
            assert layer == (stage - 1 if ".downsample." in k else stage), (k, o)
            if ".blocks." in k:
                assert k.split(".blocks.")[1].split(".")[0] == o.split(".blocks.")[1].split(".")[0], (k, o)
    # the loaded model runs end to end at full size (1024 px -> 64 x 64 x 256 -> 3 x 256 x 256 mask logits)
    x = sample_inputs(info, seed=1)
    with torch.no_grad():
        emb = adapter.encoder(torch.from_numpy(x["pixel_values"]))
        masks, iou = adapter.decoder(emb, torch.from_numpy(x["point_coords"]), torch.from_numpy(x["point_labels"]),
                                     torch.from_numpy(x["mask_input"]), torch.tensor([1.0]))
    assert emb.shape == (1, 256, 64, 64) and masks.shape == (1, 3, 256, 256) and iou.shape == (1, 3)
    assert torch.isfinite(masks).all() and torch.isfinite(iou).all()


def test_mobilesam_checkpoint_mismatch_is_clear(tmp_path):
    sd = {k: torch.zeros(s) for k, s in _original_mobilesam_shapes().items()}
    del sd["mask_decoder.iou_token.weight"]
    sd["image_encoder.layers.1.blocks.0.attn.qkv.weight"] = torch.zeros(7, 7)
    sd["mask_decoder.extra.weight"] = torch.zeros(1)
    ck = tmp_path / "mobile_sam.pt"
    torch.save(sd, ck)
    with pytest.raises(ExportError) as ei:
        build_sam("mobilesam", str(ck), "full", seed=0)
    msg = str(ei.value)
    assert "1 missing: mask_decoder.iou_token.weight" in msg and "mask_decoder.extra.weight" in msg
    assert "image_encoder.trunk.stages.1.blocks.0.attn.qkv.weight: checkpoint (7, 7)" in msg
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ExportError, match="mobile_sam.pt"):
        build_sam("mobilesam", str(bad), "full", seed=0)
