"""Captions for cxr-clip from each image's structured facts, through a small grammar (templates x synonyms).

Facts are tags (`image_tags`): the finding (normal | pneumonia, bacterial | viral, covid, ards), the population
(pediatric | adult) and, for the adult set's index.csv, view (pa | ap, supine), sex (male | female) and age band
(age_20s .. age_80s). A caption asserts a set of tags (`Caption.claims`); it is a positive for an image when every
claim is one of the image's tags (`consistent`). This is the label-derived positive set of MedCLIP (Wang et al.
2022, arXiv:2210.10163: images with the same findings are not negatives), used with SigLIP's sigmoid loss.

Held out: the sentence templates in HELDOUT_TEMPLATES and the nouns / finding phrasings in HELDOUT_* never occur in
a training caption (tests/test_train_clip.py checks that no held-out prompt can be produced by the training
grammar). `heldout_prompt_sets(n)` gives n {label: [prompt]} sets for the pneumonia-vs-normal evaluation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

# --- synonyms (training) -----------------------------------------------------------------------------------------
NOUNS = ["chest x-ray", "chest radiograph", "cxr", "chest film", "x-ray of the chest", "chest x-ray image",
         "frontal chest radiograph", "radiograph of the chest", "chest x ray", "thoracic radiograph"]
FINDINGS = {
    ("normal",): ["normal lungs", "no pneumonia", "no acute findings", "clear lungs", "no consolidation",
                  "no acute cardiopulmonary process", "healthy lungs", "no focal opacity", "no infiltrates",
                  "unremarkable lungs", "no signs of infection", "normal findings"],
    ("pneumonia",): ["pneumonia", "lung infection", "pulmonary infection", "consolidation", "airspace opacities",
                     "pulmonary infiltrates", "pneumonic changes", "an infectious process in the lungs",
                     "opacities from pneumonia", "signs of pneumonia"],
    ("pneumonia", "bacterial"): ["bacterial pneumonia", "lobar consolidation", "bacterial lung infection",
                                 "focal consolidation from bacterial infection", "pneumonia of bacterial origin",
                                 "dense lobar pneumonia"],
    ("pneumonia", "viral"): ["viral pneumonia", "viral lung infection", "diffuse interstitial opacities",
                             "bilateral interstitial pneumonia", "pneumonia of viral origin",
                             "patchy perihilar viral infiltrates"],
    ("pneumonia", "viral", "covid"): ["covid-19 pneumonia", "covid pneumonia", "sars-cov-2 pneumonia",
                                      "coronavirus pneumonia", "covid-19 lung involvement"],
    ("pneumonia", "ards"): ["acute respiratory distress syndrome", "ards", "diffuse alveolar damage"],
}
POPULATION = {  # (prefix adjective, "of ..." suffix) phrasings
    ("pediatric",): (["pediatric", "paediatric", "child", "infant"],
                     ["of a child", "of a young child", "of an infant", "of a pediatric patient", "of a toddler",
                      "of a kid"]),
    ("adult",): (["adult"], ["of an adult", "of an adult patient", "of a grown-up patient"]),
    ("adult", "male"): (["adult male"], ["of a man", "of an adult man", "of a male adult"]),
    ("adult", "female"): (["adult female"], ["of a woman", "of an adult woman", "of a female adult"]),
}
VIEWS = {("pa",): ["pa", "posteroanterior", "pa frontal"], ("ap",): ["ap", "anteroposterior", "portable ap"],
         ("ap", "supine"): ["supine ap", "supine anteroposterior", "supine portable"]}
AGE_BANDS = [f"age_{d}0s" for d in range(2, 9)]

# Sentence frames. {img}: noun phrase (with view / population), {f}: finding phrase.
TEMPLATES = ["{img} showing {f}", "{img} with {f}", "{img}: {f}", "{f}", "{f} on {img}", "{img} demonstrating {f}",
             "{img} that shows {f}", "there is {f} on this {img}", "findings of {f} on {img}", "{img}, {f}",
             "a {img} showing {f}", "a {img} with {f}", "this {img} shows {f}", "{img} consistent with {f}",
             "impression: {f}", "{img} reveals {f}", "{f} seen on {img}", "{img} positive for {f}",
             "the {img} shows {f}", "{img} depicting {f}", "{img} notable for {f}", "a photo of {f}",
             "an image of {f}", "{img} in which there is {f}"]
ONLY_IMG_TEMPLATES = ["{img}", "a {img}", "this is a {img}", "an image: {img}", "the {img}"]

# --- held out of training (evaluation only) ----------------------------------------------------------------------
HELDOUT_TEMPLATES = ["radiology report: {f} seen on the {img}", "the {img} here is suggestive of {f}",
                     "on review, this {img} has {f}", "{img} read by a radiologist as {f}",
                     "final read of the {img}: {f}", "a {img}; assessment is {f}", "{img} whose findings are {f}",
                     "what the {img} shows is {f}", "report for {img} - {f}", "{img} interpreted as {f}",
                     "conclusion from the {img}: {f}", "the study, a {img}, shows {f}"]
HELDOUT_NOUNS = ["chest xray", "x-ray of the thorax", "chest radiography image", "frontal cxr"]
HELDOUT_IMG_TEMPLATES = ["radiology study: {img}", "here is a {img}", "{img} taken today", "a digital {img}",
                         "the following {img}", "{img} from the archive", "one {img}", "image type: {img}",
                         "{img} for review", "scan: {img}", "study: a {img}", "{img} acquired in the clinic"]
HELDOUT_FINDINGS = {"PNEUMONIA": ["pneumonia in the lungs", "an infection of the lung", "lungs with pneumonia",
                                  "infectious consolidation"],
                    "NORMAL": ["normal clear lungs", "lungs without pneumonia", "no acute lung disease",
                               "no lung infection"]}


@dataclass(frozen=True)
class Caption:
    text: str
    claims: frozenset


def image_tags(*, finding: str, subtype: str | None = None, population: str, view: str | None = None,
               sex: str | None = None, age: float | None = None) -> frozenset:
    """Tags of one image. finding: 'NORMAL' | 'PNEUMONIA' (Kermany) or an index.csv finding ('COVID-19',
    'COVID-19, ARDS', 'No Finding'); subtype: 'bacteria' | 'virus' (Kermany file names); population: 'pediatric' |
    'adult'; view: 'PA' | 'AP' | 'AP Supine'; sex: 'M' | 'F'; age in years."""
    t = {population}
    f = finding.upper()
    if f in ("NORMAL", "NO FINDING"):
        t.add("normal")
    else:
        t.add("pneumonia")  # every abnormal image of both sets is a pneumonia (COVID-19 is a viral pneumonia)
        if subtype in ("bacteria", "bacterial"):
            t.add("bacterial")
        if subtype in ("virus", "viral") or "COVID" in f:
            t.add("viral")
        if "COVID" in f:
            t.add("covid")
        if "ARDS" in f:
            t.add("ards")
    if view:
        v = view.upper()
        t.add("pa" if v.startswith("PA") else "ap")
        if "SUPINE" in v:
            t.add("supine")
    if sex in ("M", "F"):
        t.add("male" if sex == "M" else "female")
    if age is not None and 20 <= age < 90:
        t.add(f"age_{int(age) // 10}0s")
    return frozenset(t)


def consistent(claims: frozenset, tags: frozenset) -> bool:
    """A caption is a positive for an image when it claims nothing the image's facts do not say."""
    return claims <= tags


def _options(table: dict, tags: frozenset) -> list[tuple]:
    return [k for k in table if set(k) <= tags]


def sample_caption(rng: np.random.Generator, tags: frozenset, *, heldout: bool = False) -> Caption:
    """One caption of an image with `tags`: the finding (p 0.85, at a random level of detail), the population
    (p 0.5), and for adult images view / sex / age band (p 0.25 each); at least one claim. heldout=True draws from
    the held-out nouns and templates instead (used by tests and for diagnostics, never by training)."""
    claims: set = set()
    templates = HELDOUT_TEMPLATES if heldout else TEMPLATES
    nouns = HELDOUT_NOUNS if heldout else NOUNS
    fkeys = _options(FINDINGS, tags)
    use_f = rng.random() < 0.85
    use_pop = rng.random() < 0.5 or not use_f
    f_text = None
    if use_f:
        k = fkeys[rng.integers(len(fkeys))]
        f_text = FINDINGS[k][rng.integers(len(FINDINGS[k]))]
        claims |= set(k)
    noun = nouns[rng.integers(len(nouns))]
    pre: list[str] = []
    if "adult" in tags:
        vk = _options(VIEWS, tags)
        if vk and rng.random() < 0.25:
            k = vk[rng.integers(len(vk))]
            pre.append(VIEWS[k][rng.integers(len(VIEWS[k]))])
            claims |= set(k)
    img = noun
    if use_pop:
        pk = _options(POPULATION, tags)
        if "adult" in tags and rng.random() > 0.25:  # sex is stated only part of the time
            pk = [k for k in pk if len(k) == 1] or pk
        k = pk[rng.integers(len(pk))]
        adj, suf = POPULATION[k]
        if rng.random() < 0.4:
            pre.append(adj[rng.integers(len(adj))])
        else:
            img = f"{noun} {suf[rng.integers(len(suf))]}"
        claims |= set(k)
        ages = [t for t in tags if t.startswith("age_")]
        if ages and rng.random() < 0.25:
            img += f" in their {ages[0][4:]}"
            claims.add(ages[0])
    if pre:
        img = " ".join(pre) + " " + img
    if f_text is None:
        t = ONLY_IMG_TEMPLATES[rng.integers(len(ONLY_IMG_TEMPLATES))]
        text = t.format(img=img)
    else:
        t = templates[rng.integers(len(templates))]
        text = t.format(img=img, f=f_text)
    return Caption(" ".join(text.split()), frozenset(claims))


def heldout_prompt_sets(n: int = 12) -> list[dict[str, list[str]]]:
    """n paraphrase sets {"PNEUMONIA": [p], "NORMAL": [p]} built only from held-out templates, nouns and finding
    phrasings (set k: template k, noun k mod 4, finding phrasing k mod 4). Deterministic."""
    if n > len(HELDOUT_TEMPLATES):
        raise ValueError(f"at most {len(HELDOUT_TEMPLATES)} held-out paraphrase sets")
    out = []
    for k in range(n):
        t, noun = HELDOUT_TEMPLATES[k], HELDOUT_NOUNS[k % len(HELDOUT_NOUNS)]
        out.append({lab: [t.format(img=noun, f=HELDOUT_FINDINGS[lab][k % len(HELDOUT_FINDINGS[lab])])]
                    for lab in ("PNEUMONIA", "NORMAL")})
    return out


def heldout_pair_prompts(labels: dict[str, str], n: int = 12) -> list[dict[str, list[str]]]:
    """n held-out paraphrase sets for any two-label question given as {label: finding or population phrase}, e.g.
    {"BACTERIAL": "bacterial pneumonia", "VIRAL": "viral pneumonia"}: template k with noun k mod 4."""
    return [{lab: [HELDOUT_TEMPLATES[k].format(img=HELDOUT_NOUNS[k % len(HELDOUT_NOUNS)], f=f)]
             for lab, f in labels.items()} for k in range(min(n, len(HELDOUT_TEMPLATES)))]


def heldout_population_prompts(n: int = 12) -> list[dict[str, list[str]]]:
    """n held-out sets {"PEDIATRIC": [p], "ADULT": [p]}: held-out image-only template k, noun k mod 4, and a
    population phrase of the training grammar (the sentence is unseen, the phrase is not)."""
    ped, adu = POPULATION[("pediatric",)][1], POPULATION[("adult",)][1]
    return [{"PEDIATRIC": [HELDOUT_IMG_TEMPLATES[k].format(img=f"{HELDOUT_NOUNS[k % 4]} {ped[k % len(ped)]}")],
             "ADULT": [HELDOUT_IMG_TEMPLATES[k].format(img=f"{HELDOUT_NOUNS[k % 4]} {adu[k % len(adu)]}")]}
            for k in range(min(n, len(HELDOUT_IMG_TEMPLATES)))]


def training_finding_renderings() -> set[str]:
    """Every caption the training grammar makes from a noun and a finding alone (no view / population): the set a
    held-out prompt must not be in."""
    fs = [f for v in FINDINGS.values() for f in v]
    return {" ".join(t.format(img=n, f=f).split()) for t, n, f in itertools.product(TEMPLATES, NOUNS, fs)}


def training_vocabulary() -> set[str]:
    """All words a training caption can contain (for the token set the text tower learns)."""
    words: set[str] = set()
    parts = NOUNS + [f for v in FINDINGS.values() for f in v] + TEMPLATES + ONLY_IMG_TEMPLATES
    parts += [p for a, s in POPULATION.values() for p in a + s] + [v for vs in VIEWS.values() for v in vs]
    parts += [f"in their {b[4:]}" for b in AGE_BANDS]
    for p in parts:
        words |= set(p.replace("{img}", " ").replace("{f}", " ").split())
    return words
