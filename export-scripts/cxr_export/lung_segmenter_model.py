"""Model of the lung segmenter (lung_segmenter.py): a SamAdapter (sam.py) around transformers' SamModel with the ViT
replaced by a small residual CNN + feature pyramid, the prompt-map decoder, the default and tiny architectures, and
the module dict a checkpoint saves."""

from __future__ import annotations


DEFAULT_ARCH = dict(image_size=256, stride=4, embed_dim=64, widths=(24, 32, 64, 128, 160), depths=(1, 2, 2, 1),
                    decoder_layers=2, decoder_heads=4, decoder_mlp=256, mask_input_channels=16,
                    prompt_maps={"sigma": 10.0, "tau": 2.0})
TINY_ARCH = dict(image_size=64, stride=4, embed_dim=32, widths=(8, 8, 16, 16, 32), depths=(1, 1, 1, 1),
                 decoder_layers=1, decoder_heads=2, decoder_mlp=64, mask_input_channels=8,
                 prompt_maps={"sigma": 3.0, "tau": 1.0})


def build_model(arch: dict, seed: int = 0):
    """A SamAdapter (sam.py) around transformers' SamModel with its ViT replaced by a small CNN + FPN.
    Returns (adapter, info)."""
    import torch
    from torch import nn
    from transformers import SamConfig, SamModel
    from transformers.models.sam.modeling_sam import SamLayerNorm

    from .sam import SamAdapter

    torch.manual_seed(seed)
    s, c, stride = arch["image_size"], arch["embed_dim"], arch["stride"]
    e = s // stride
    cfg = SamConfig(
        vision_config=dict(hidden_size=c, output_channels=c, num_hidden_layers=1, num_attention_heads=1,
                           image_size=s, patch_size=stride, mlp_dim=c, window_size=0, global_attn_indexes=[0],
                           num_pos_feats=c // 2),
        prompt_encoder_config=dict(hidden_size=c, image_size=s, patch_size=stride,
                                   mask_input_channels=arch["mask_input_channels"]),
        mask_decoder_config=dict(hidden_size=c, mlp_dim=arch["decoder_mlp"], num_hidden_layers=arch["decoder_layers"],
                                 num_attention_heads=arch["decoder_heads"], iou_head_hidden_dim=c),
    )
    assert cfg.prompt_encoder_config.image_embedding_size == e, cfg.prompt_encoder_config.image_embedding_size

    def gn(ch):
        return nn.GroupNorm(min(8, ch), ch)

    class Block(nn.Module):
        def __init__(self, ch):
            super().__init__()
            self.c1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.n1 = gn(ch)
            self.c2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
            self.n2 = gn(ch)

        def forward(self, x):
            y = torch.relu(self.n1(self.c1(x)))
            return torch.relu(x + self.n2(self.c2(y)))

    def down(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), gn(cout), nn.ReLU())

    class CnnEncoder(nn.Module):
        """Residual CNN, strides 2..32, and a top-down feature pyramid (Lin et al., CVPR 2017) back to stride 4:
        pixel_values [B,3,S,S] -> image_embeddings [B,C,S/4,S/4], ending in SAM's neck norm (LayerNorm2d)."""

        def __init__(self):
            super().__init__()
            w, d = arch["widths"], arch["depths"]
            self.stem = down(3, w[0])  # stride 2
            self.stages = nn.ModuleList()
            for i in range(4):  # strides 4, 8, 16, 32
                self.stages.append(nn.Sequential(down(w[i], w[i + 1]), *[Block(w[i + 1]) for _ in range(d[i])]))
            self.lateral = nn.ModuleList([nn.Conv2d(w[i + 1], c, 1) for i in range(4)])
            self.out = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False),
                                     SamLayerNorm(c, data_format="channels_first"), nn.ReLU(),
                                     nn.Conv2d(c, c, 1, bias=False), SamLayerNorm(c, data_format="channels_first"))

        def forward(self, pixel_values):
            x = self.stem(pixel_values)
            feats = []
            for st in self.stages:
                x = st(x)
                feats.append(x)
            y = self.lateral[3](feats[3])
            for i in (2, 1, 0):
                y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest") + self.lateral[i](feats[i])
            return (self.out(y),)

    model = SamModel(cfg)
    model.vision_encoder = nn.Identity()  # replaced by CnnEncoder in the adapter
    # one Gaussian random-Fourier positional matrix for points and the image grid (SAM's PositionEmbeddingRandom,
    # scale 1), fixed like SAM's buffer
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn((2, c // 2), generator=g)
    model.shared_image_embedding.positional_embedding = nn.Parameter(pos.clone(), requires_grad=False)
    model.prompt_encoder.shared_embedding = model.shared_image_embedding
    encoder = CnnEncoder()
    adapter = SamAdapter(model, encoder=encoder)
    if arch.get("prompt_maps"):
        adapter.decoder = PromptMapDecoder(adapter.decoder, s, e, c, arch["prompt_maps"])
    # training only (not exported): lungs-vs-rest from the embedding, so the encoder learns lung features early
    adapter.aux = nn.Conv2d(c, 1, 1)
    info = dict(arch="lung-sam-cnn", image_size=s, embedding_size=e, embedding_dim=c, mask_size=4 * e,
                extra_features=[])
    return adapter, info


def _prompt_map_decoder_class():
    import torch
    from torch import nn

    class PromptMapDecoder(nn.Module):
        """SAM's decoder (sam.py's adapter, same five inputs) with dense prompt maps added to the image embedding,
        as click maps in interactive segmentation (Xu et al., "Deep Interactive Object Selection", CVPR 2016;
        RITM, Sofiiuk et al. 2022): on the E x E grid, a soft inside-the-box map (box corners labelled 2 / 3) and
        Gaussian maps (sigma px of the frame) of the positive and the negative clicks; a small conv turns them into
        C channels. Padding points (-1) add nothing. SAM's own sparse prompt path is unchanged, so points and box
        still reach the two-way transformer as tokens; the maps make 'inside the box' learnable from a few hundred
        images."""

        def __init__(self, base, image_size: int, e: int, c: int, maps: dict):
            super().__init__()
            self.base = base
            self.sigma = float(maps.get("sigma", 10.0))
            self.tau = float(maps.get("tau", 2.0))
            stride = image_size / e
            centres = (torch.arange(e, dtype=torch.float32) + 0.5) * stride
            gy, gx = torch.meshgrid(centres, centres, indexing="ij")
            self.register_buffer("gx", gx.reshape(1, 1, e * e), persistent=False)
            self.register_buffer("gy", gy.reshape(1, 1, e * e), persistent=False)
            self.e = e
            self.maps = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, c, 1))

        @property
        def multimask_output(self):
            return self.base.multimask_output

        @multimask_output.setter
        def multimask_output(self, on):
            self.base.multimask_output = on

        def prompt_maps(self, point_coords, point_labels):
            """point_coords [B,N,2] frame pixels, point_labels [B,N] -> [B,3,E,E] (positive, negative, box)."""
            x = point_coords[..., 0:1] + 0.5  # [B,N,1], continuous coordinates of the pixel centre
            y = point_coords[..., 1:2] + 0.5
            lab = point_labels.unsqueeze(-1)
            d2 = (self.gx - x) ** 2 + (self.gy - y) ** 2  # [B,N,E*E]
            g = torch.exp(-d2 / (2 * self.sigma ** 2))
            pos = (g * (lab == 1).to(g.dtype)).amax(1)
            neg = (g * (lab == 0).to(g.dtype)).amax(1)
            is2, is3 = (lab == 2).to(g.dtype), (lab == 3).to(g.dtype)
            x0, y0 = (x * is2).sum(1), (y * is2).sum(1)  # [B,1]
            x1, y1 = (x * is3).sum(1), (y * is3).sum(1)
            has_box = is2.amax(1)
            t = self.tau
            inside = (torch.sigmoid((self.gx[:, 0] - x0) / t) * torch.sigmoid((x1 - self.gx[:, 0]) / t)
                      * torch.sigmoid((self.gy[:, 0] - y0) / t) * torch.sigmoid((y1 - self.gy[:, 0]) / t)) * has_box
            return torch.stack([pos, neg, inside], 1).reshape(-1, 3, self.e, self.e)

        def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
            extra = self.maps(self.prompt_maps(point_coords, point_labels))
            return self.base(image_embeddings + extra, point_coords, point_labels, mask_input, has_mask_input)

    return PromptMapDecoder


def PromptMapDecoder(*a, **kw):  # noqa: N802  (class built lazily: torch is imported only when used)
    return _prompt_map_decoder_class()(*a, **kw)


def modules_of(adapter):
    """The trainable modules (the decoder wrapper holds the whole SamModel: prompt encoder + mask decoder)."""
    import torch

    mods = {"encoder": adapter.encoder, "sam": adapter.model, "aux": adapter.aux}
    if hasattr(adapter.decoder, "maps"):
        mods["prompt_maps"] = adapter.decoder.maps
    return torch.nn.ModuleDict(mods)
