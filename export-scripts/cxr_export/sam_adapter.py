"""The one ONNX interface of every `cxr-export sam` arch (sam.py): SamAdapter and Sam2Adapter wrap transformers'
SamModel / Sam2Model (and the MobileSAM and lung-segmenter variants built on them) into an image encoder and a prompt
decoder with the inputs of SAM's own ONNX export (segment_anything/utils/onnx.py): points with labels 1/0/-1/2/3,
mask_input and has_mask_input."""

from __future__ import annotations


def _embed_points_sam(pe_fn, point_embed, not_a_point_embed, coords, labels, image_size: int):
    """SAM ONNX convention: pe(coords+0.5) except for -1 (not-a-point), plus point_embed[i] for label i in 0..3."""
    import torch

    coords = coords + 0.5
    pe = pe_fn(coords / image_size)  # [1,N,C]
    lab = labels.unsqueeze(-1)
    emb = pe * (lab != -1).to(pe.dtype) + not_a_point_embed * (lab == -1).to(pe.dtype)
    for i, w in enumerate(point_embed):
        emb = emb + w * (lab == i).to(pe.dtype)
    return emb


def _make_decoder(model, multimask: bool, n_high_res: int):
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sam = model
            self.multimask_output = multimask

        def forward(self, *inputs):
            feats = inputs[: n_high_res + 1]
            point_coords, point_labels, mask_input, has_mask_input = inputs[n_high_res + 1:]
            image_embeddings = feats[-1]
            pr = self.sam.prompt_encoder
            pe_layer = pr.shared_embedding
            pe = lambda c01: pe_layer(c01.unsqueeze(1)).squeeze(1)  # noqa: E731  coords already in [0,1]
            pw = pr.point_embed
            point_weights = [w.weight for w in pw] if isinstance(pw, torch.nn.ModuleList) else \
                [pw.weight[i:i + 1] for i in range(pw.weight.shape[0])]
            sparse = _embed_points_sam(pe, point_weights, pr.not_a_point_embed.weight, point_coords, point_labels,
                                       pr.input_image_size)
            has = has_mask_input.reshape(-1, 1, 1, 1)
            dense = has * pr.mask_embed(mask_input) + (1 - has) * pr.no_mask_embed.weight.reshape(1, -1, 1, 1)
            kwargs = dict(image_embeddings=image_embeddings,
                          image_positional_embeddings=self.sam.get_image_wide_positional_embeddings(),
                          sparse_prompt_embeddings=sparse.unsqueeze(1), dense_prompt_embeddings=dense,
                          multimask_output=self.multimask_output)
            if n_high_res:
                kwargs["high_resolution_features"] = list(feats[:-1])
            out = self.sam.mask_decoder(**kwargs)
            return out[0][:, 0], out[1][:, 0]

    return Decoder().eval()


class SamAdapter:
    """transformers SamModel (sam-vit-b, medsam; MobileSAM with its vision encoder swapped) -> encoder/decoder."""

    n_high_res = 0
    feature_names = ["image_embeddings"]
    padding_point = "when-no-box"

    def __init__(self, model, multimask: bool = True, encoder=None):
        import torch

        self.model = model

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.vision_encoder = encoder if encoder is not None else model.vision_encoder

            def forward(self, pixel_values):
                return self.vision_encoder(pixel_values)[0]

        self.encoder = Encoder().eval()
        self.decoder = _make_decoder(model, multimask, self.n_high_res)

    def set_multimask(self, on: bool) -> None:
        self.decoder.multimask_output = on

    def reference(self, feats, points=None, labels=None, boxes=None, multimask=True):
        """transformers' own forward on the encoder's features, for checking the adapter's prompt semantics."""
        import torch

        with torch.no_grad():
            out = self.model(image_embeddings=feats[-1], input_points=points, input_labels=labels, input_boxes=boxes,
                             multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]


class Sam2Adapter(SamAdapter):
    """transformers Sam2Model (Hiera) -> encoder (3 feature maps) / decoder. SAM2 always appends the padding point
    (also after a box), as its own predictor does."""

    n_high_res = 2
    feature_names = ["high_res_feats_0", "high_res_feats_1", "image_embeddings"]
    padding_point = "always"

    def __init__(self, model, multimask: bool = True):
        import torch

        self.model = model

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.sam = model

            def forward(self, pixel_values):
                return tuple(self.sam.get_image_embeddings(pixel_values))

        self.encoder = Encoder().eval()
        self.decoder = _make_decoder(model, multimask, self.n_high_res)

    def reference(self, feats, points=None, labels=None, boxes=None, multimask=True):
        import torch

        with torch.no_grad():
            out = self.model(image_embeddings=list(feats), input_points=points, input_labels=labels,
                             input_boxes=boxes, multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]
