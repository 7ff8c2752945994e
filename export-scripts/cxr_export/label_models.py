"""The models of `cxr-export label`, run with onnxruntime exactly as `npm run label` runs them in the app's engines.

- Manifest and variant: public/models/manifest.json; the variant is chosen as app/lib/models/manifest.ts
  chooseVariant does on a CPU (wasm) backend: the preferred dtype when the model has it, else fp32, else int8.
  Every file of the variant is checked against its manifest size and sha256 before a session is created
  (app/platform/node/model-files.ts does the same in Node).
- Preprocessing: app/lib/imaging/preprocess.ts toModelInput: resize (Pillow's filters, only when the size differs),
  then a float32 lookup table v -> ((v / 255) - mean) / std, NCHW.
- Classifier (app/lib/classifier/engine.ts): the graph's `probabilities` (else softmax of `logits`), P(positive)
  with positiveIndex (PNEUMONIA when named so, else the second label), `embedding`, and the out-of-distribution score
  from `attentions` with the variant's ood.json (app/lib/classifier/ood.ts; export-scripts ood_score.py). A
  dynamically quantized int8 graph runs one image per call (manifest.ts batchCoupled).
- CLIP zero-shot (app/lib/clip/engine.ts + zero-shot.ts): open_clip's recipe, prompt embeddings L2-normalised and
  averaged per label, logits = logit_scale x cosine, softmax over labels; prompts tokenised with the model's
  tokenizer.json (HF `tokenizers`, the same library the app runs in JavaScript), truncated keeping the end token.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ExportError
from .manifest import sha256_file


def load_manifest(models_dir) -> dict:
    """The manifest.json of models_dir; ExportError naming the path when it is missing."""
    p = Path(models_dir) / "manifest.json"
    if not p.exists():
        raise ExportError(f"No model manifest at {p} (export the models first, or pass --models-dir)")
    return json.loads(p.read_text())


def find_entry(manifest: dict, model_id: str, family: str) -> dict:
    """The manifest entry `model_id` of `family`; ExportError listing the ids there are otherwise."""
    for e in manifest.get("models", []):
        if e.get("id") == model_id:
            if e.get("family") != family:
                raise ExportError(f"Model '{model_id}' is a {e.get('family')}, not a {family}")
            return e
    have = ", ".join(e.get("id", "?") for e in manifest.get("models", []))
    raise ExportError(f"Model '{model_id}' is not in the manifest (have: {have})")


def default_model_id(manifest: dict, family: str) -> str | None:
    """app/lib/models/default-model.ts: the first trained model of the family, else the first one."""
    ms = [e for e in manifest.get("models", []) if e.get("family") == family]
    trained = [e for e in ms if e.get("weights") != "random-fixture"]
    return (trained or ms or [{}])[0].get("id")


def choose_variant(entry: dict, prefer: str = "fp32") -> dict:
    """chooseVariant on a CPU backend (no fp16): `prefer` when present (fp16 never), else fp32, else int8."""
    v = entry.get("variants", {})
    if prefer in ("fp32", "int8") and v.get(prefer):
        return v[prefer]
    for d in ("fp32", "int8"):
        if v.get(d):
            return v[d]
    raise ExportError(f"{entry.get('name', entry.get('id'))}: no fp32 or int8 variant to run on a CPU")


def verified_path(models_dir, rec: dict) -> Path:
    """The file of a manifest file record, its size and sha256 checked (and of its external data)."""
    for r in [rec, *rec.get("external_data", [])]:
        p = Path(models_dir) / r["path"]
        if not p.exists():
            raise ExportError(f"Model file missing: {p}")
        if p.stat().st_size != r["bytes"]:
            raise ExportError(f"{p}: {p.stat().st_size} bytes, the manifest says {r['bytes']}")
        got = sha256_file(p)
        if got != r["sha256"]:
            raise ExportError(f"{p}: sha256 {got} does not match the manifest's {r['sha256']} (re-export or re-download)")
    return Path(models_dir) / rec["path"]


def file_of(variant: dict, role: str) -> dict | None:
    return next((f for f in variant["files"] if f["role"] == role), None)


def batch_coupled(variant: dict) -> bool:
    """manifest.ts batchCoupled: a dynamically quantized int8 variant (one image per call)."""
    return variant.get("dtype") == "int8" and variant.get("activation_quantization") != "static"


def normalization_lut(mean, std) -> np.ndarray:
    """[3,256] float32: preprocess.ts normalizationLUT, f32(f32(f32(v/255) - mean) / std) per channel."""
    f = np.float32
    v = (np.arange(256, dtype=np.float64) / 255).astype(f)
    return np.stack([((v - f(m)) / f(s)).astype(f) for m, s in zip(mean, std)])


def to_model_input(rgb: np.ndarray, prep: dict, lut: np.ndarray) -> np.ndarray:
    """uint8 [H,W,3] -> float32 [3,h,w] as toModelInput (Pillow resize only when the size differs)."""
    from PIL import Image

    h, w = prep["size"]
    if rgb.shape[:2] != (h, w):
        filt = {"bicubic": Image.BICUBIC, "nearest": Image.NEAREST}.get(prep.get("resize"), Image.BILINEAR)
        rgb = np.asarray(Image.fromarray(rgb, "RGB").resize((w, h), filt))
    return np.stack([lut[c][rgb[:, :, c]] for c in range(3)])


def ort_session(path: Path, threads: int, providers: list[str] | None = None):
    """An onnxruntime session (CPU unless providers say otherwise, e.g. CUDAExecutionProvider on a GPU node)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])


def positive_index(labels: list[str]) -> int:
    """postprocess.ts positiveIndex."""
    for i, lab in enumerate(labels):
        if lab.upper() == "PNEUMONIA":
            return i
    return min(1, len(labels) - 1)


def parse_ood(doc: dict):
    """An ood.json (format of app/lib/classifier/ood.ts parseOodStats) as ood_score.OodDoc (.threshold, .badge,
    .scores(attentions, x)); ExportError naming what is wrong."""
    from .ood_score import OodDoc

    return OodDoc(doc)


def ood_scores(att: np.ndarray, st, x: np.ndarray | None = None) -> np.ndarray:
    """[b] OOD scores of a batch from the graph's attentions and its model input x [b,3,H,W] (ood.ts oodOfBatch)."""
    return st.scores(att, x)


@dataclass
class Classifier:
    """One classifier variant's session and what its outputs mean (see the module comment)."""
    entry: dict
    variant: dict
    session: object
    ood: object | None  # ood_score.OodDoc
    lut: np.ndarray
    labels: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, models_dir, entry: dict, dtype: str = "fp32", threads: int = 1, providers=None) -> "Classifier":
        v = choose_variant(entry, dtype)
        sess = ort_session(verified_path(models_dir, file_of(v, "model")), threads, providers)
        ood_rec = file_of(v, "ood")
        ood = parse_ood(json.loads(verified_path(models_dir, ood_rec).read_text())) if ood_rec else None
        pre = entry["preprocessing"]
        return cls(entry, v, sess, ood, normalization_lut(pre["mean"], pre["std"]), entry.get("labels") or ["NORMAL", "PNEUMONIA"])

    def run(self, x: np.ndarray) -> list[dict]:
        """x [b,3,H,W] float32 -> per image {probabilities [C], probability P(positive), embedding, ood_score, ood}."""
        if batch_coupled(self.variant) and len(x) > 1:
            return [r for i in range(len(x)) for r in self.run(x[i:i + 1])]
        outs = [o.name for o in self.session.get_outputs()]
        want = [n for n in ("probabilities", "logits", "embedding", "attentions") if n in outs and (n != "attentions" or self.ood)]
        r = dict(zip(want, self.session.run(want, {self.session.get_inputs()[0].name: x})))
        if "probabilities" in r:
            probs = r["probabilities"]
        elif "logits" in r:
            z = r["logits"].astype(np.float64)
            e = np.exp(z - z.max(1, keepdims=True))
            probs = e / e.sum(1, keepdims=True)
        else:
            raise ExportError("Classifier produced neither probabilities nor logits")
        scores = ood_scores(r["attentions"], self.ood, x) if self.ood is not None and "attentions" in r else None
        pos = positive_index(self.labels)
        out = []
        for i in range(len(x)):
            d = {"probabilities": [float(p) for p in probs[i]], "probability": float(probs[i][pos]),
                 "embedding": r["embedding"][i].astype(np.float32) if "embedding" in r else None}
            if scores is not None:
                d.update(ood_score=float(scores[i]), ood=bool(scores[i] > self.ood.threshold),
                         ood_threshold=self.ood.threshold, ood_badge=self.ood.badge)
            out.append(d)
        return out


def _unit32(v: np.ndarray) -> np.ndarray:
    """zero-shot.ts l2Normalize: the norm in float64, the result stored as float32."""
    v64 = np.asarray(v, np.float64)
    n = np.sqrt((v64 * v64).sum(-1, keepdims=True))
    return np.where(n > 0, v64 / np.where(n > 0, n, 1), 0).astype(np.float32)


@dataclass
class Clip:
    """A CLIP variant's image encoder, and the label embeddings of the prompt sets (computed once)."""
    entry: dict
    variant: dict
    image: object
    labels: list[str]
    label_w: np.ndarray
    logit_scale: float
    lut: np.ndarray

    @classmethod
    def load(cls, models_dir, entry: dict, prompt_sets: list[dict], dtype: str = "fp32", threads: int = 1,
             providers=None) -> "Clip":
        from tokenizers import Tokenizer

        v = choose_variant(entry, dtype)
        cfg = entry.get("config", {})
        if cfg.get("scoring", "softmax") != "softmax" or float(cfg.get("logit_bias", 0)) != 0:
            # engine.ts zeroShotRule also knows SigLIP's sigmoid + bias (Hub models); this job implements softmax only
            raise ExportError(f"{entry['id']}: zero-shot scoring {cfg.get('scoring')!r} with a logit_bias is not implemented "
                              "here; use npm run label")
        tok_rec = file_of(v, "tokenizer") or next(f for vv in entry["variants"].values() for f in vv["files"] if f["role"] == "tokenizer")
        tok_path = verified_path(models_dir, tok_rec)
        tok = Tokenizer.from_file(str(tok_path))
        specials = {t["id"] for t in json.loads(tok_path.read_text()).get("added_tokens", []) if t.get("special")}
        L, pad = int(cfg["context_length"]), int(cfg.get("pad_token_id", 0))
        text = ort_session(verified_path(models_dir, file_of(v, "text_encoder")), threads, providers)
        image = ort_session(verified_path(models_dir, file_of(v, "image_encoder")), threads, providers)
        usable = usable_prompt_sets(prompt_sets)
        if len(usable) < 2:
            raise ExportError("zero-shot needs at least two labels with a prompt each")
        cache: dict[str, np.ndarray] = {}
        names = [i.name for i in text.get_inputs()]
        for p in dict.fromkeys(q for s in usable for q in s["prompts"]):
            ids = np.full((1, L), pad, np.int64)
            e = _encode(tok, p, L, specials)
            ids[0, :len(e)] = e
            feeds = {"input_ids" if "input_ids" in names else names[0]: ids}
            if "attention_mask" in names:
                feeds["attention_mask"] = (np.arange(L) < len(e)).astype(np.int64)[None]
            cache[p] = text.run(None, feeds)[0][0].astype(np.float32)  # one prompt per call: no batch coupling
        w = []
        for s in usable:  # zero-shot.ts labelEmbedding: float32 accumulation of the normalised prompt embeddings
            acc = np.zeros_like(cache[s["prompts"][0]])
            for p in s["prompts"]:
                acc = (acc + _unit32(cache[p]).astype(np.float64) / len(s["prompts"])).astype(np.float32)
            w.append(_unit32(acc))
        pre = entry["preprocessing"]
        return cls(entry, v, image, [s["label"] for s in usable], np.stack(w), float(cfg.get("logit_scale", 100)),
                   normalization_lut(pre["mean"], pre["std"]))

    def run(self, x: np.ndarray) -> list[dict]:
        """x [b,3,H,W] -> per image {probabilities {label: p}, label, confidence, embedding}."""
        if batch_coupled(self.variant) and len(x) > 1:
            return [r for i in range(len(x)) for r in self.run(x[i:i + 1])]
        emb = self.image.run(None, {self.image.get_inputs()[0].name: x})[0].astype(np.float32)
        sims = _unit32(emb).astype(np.float64) @ self.label_w.astype(np.float64).T
        logits = self.logit_scale * sims
        e = np.exp(logits - logits.max(1, keepdims=True))
        probs = e / e.sum(1, keepdims=True)
        out = []
        for i in range(len(x)):
            k = int(np.argmax(probs[i]))
            out.append({"probabilities": {lab: float(probs[i][j]) for j, lab in enumerate(self.labels)},
                        "label": self.labels[k], "confidence": float(probs[i][k]), "embedding": emb[i]})
        return out


def _encode(tok, text: str, L: int, specials: set[int]) -> list[int]:
    """tokenize.ts ClipTokenizer.encode: with special tokens, truncated to L keeping the added tokens."""
    full = tok.encode(text, add_special_tokens=True).ids
    if len(full) <= L:
        return full
    content = tok.encode(text, add_special_tokens=False).ids
    added = len(full) - len(content)
    if 0 <= added < L:
        for p in range(added + 1):
            if full[p:p + len(content)] == content:
                return full[:p] + content[:L - added] + full[p + len(content):]
    return full[:L - 1] + [full[-1]] if full[-1] in specials else full[:L]


def usable_prompt_sets(sets: list[dict]) -> list[dict]:
    """prompts.ts usablePromptSets: labels and prompts trimmed, empty ones dropped."""
    out = []
    for s in sets:
        label, prompts = str(s["label"]).strip(), [str(p).strip() for p in s["prompts"] if str(p).strip()]
        if label and prompts:
            out.append({"label": label, "prompts": prompts})
    return out


def default_prompt_sets(entry: dict | None) -> list[dict]:
    """prompts.ts defaultPromptSets: config.default_prompts, else two generic NORMAL/PNEUMONIA prompts."""
    d = (entry or {}).get("config", {}).get("default_prompts")
    if isinstance(d, list):
        return [{"label": x["label"], "prompts": list(x["prompts"])} for x in d]
    if isinstance(d, dict):
        return [{"label": k, "prompts": list(p) if isinstance(p, list) else [p]} for k, p in d.items()]
    return [{"label": "NORMAL", "prompts": ["a normal chest X-ray"]},
            {"label": "PNEUMONIA", "prompts": ["a chest X-ray showing pneumonia"]}]


def parse_prompt_sets(text: str, source: str) -> list[dict]:
    """A prompts file {LABEL: [prompt, ...]} (or [{label, prompts}]); ExportError naming what is wrong."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(f"{source}: not JSON ({e})") from e
    if isinstance(d, dict):
        sets = [{"label": k, "prompts": v if isinstance(v, list) else [v]} for k, v in d.items()]
    elif isinstance(d, list):
        sets = d
    else:
        raise ExportError(f"{source}: expected {{LABEL: [prompt, ...]}}")
    for s in sets:
        if not isinstance(s, dict) or not all(isinstance(p, str) for p in s.get("prompts", [None])):
            raise ExportError(f"{source}: every label needs a list of prompt strings")
    if len(usable_prompt_sets(sets)) < 2:
        raise ExportError(f"{source}: needs at least two labels with a non-empty prompt each")
    return sets
