"""Does a backbone score content or render statistics? Invariance and attribute checks on fresh renders.

Generic over a :class:`metrics.backbones.Backbone` (or its spec string): the
image parts work for any backbone (CLIP, ``hf-dino:``), the text parts need a
CLIP. Everything is measured on ``held_out_scenes(n, seed)``:

* :func:`image_consistency`: CLIP-I (cosine) of each render with its perturbed
  copy, per perturbation (target >= 0.95 for those that keep every attribute).
* :func:`caption_consistency`: CLIP-T of the true caption on the perturbed
  render, as a ratio of the clean mean (target >= 0.90).
* :func:`attribute_auc`: ROC AUC of the true caption against the same caption
  with one attribute wrong, per attribute, clean and perturbed.
* :func:`subject_auc`: same-subject ROC AUC of image embeddings on the held-out
  subjects, against every other subject and against those of the same colour.
* :func:`analyzer_agreement`: how often the geometric analyzer still reads
  every attribute it reads on the perturbed renders (backbone-free): a
  perturbation that changes what the analyzer reads is not a pure nuisance.

``hflip`` is in the image list as a reference only: a mirror image moves a
left or right object to the other side, so it changes the named position (and
the world's mirror-image subjects); it is left out of the caption measures.
Results are plain dicts of numbers; means come with a bootstrap ``ci95`` pair.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from ipbench.world.render import ATTRIBUTES, BLOB, Scene, caption, held_out_scenes, render, subject_set

Perturbation = Callable[[np.ndarray], np.ndarray]  # (N, 64, 64, 3) uint8 -> same
BRIGHTNESS = 0.15
CONTRAST = 0.2
ATTRIBUTE_CHANGING = ("hflip",)  # perturbations left out of the caption measures (see the module docstring)


def _torch_perturbation(function, value: float) -> Perturbation:
    import torch

    def apply(images: np.ndarray) -> np.ndarray:
        pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double() / 255.0
        changed = function(pixels, torch.full((len(images),), value, dtype=torch.float64))
        return (changed * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()

    return apply


def _corruption(name: str, seed: int) -> Perturbation:
    from ipbench.world.analyze import corrupt

    def apply(images: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([seed, 5])
        return np.stack([corrupt(image, name, rng) for image in images])

    return apply


def perturbations(vae_dir=None, device: str = "cpu", seed: int = 0) -> dict[str, Perturbation]:
    """The standard perturbations, by name.

    ``brightness+15`` / ``brightness-15``: every channel times 1.15 / 0.85
    (clipped); ``contrast+20`` / ``contrast-20``: the deviation from the image's
    mean grey times 1.2 / 0.8; ``blur`` and ``noise``: :func:`ipbench.world.analyze.corrupt`
    (Gaussian sigma 0.7 px; sigma 8/255); ``hflip``: mirror left-right; ``vae``
    (only with ``vae_dir``): encode (posterior mode) and decode with that
    AutoencoderKL on ``device``.
    """
    from ipbench.world import train_data

    chosen = {
        f"brightness+{round(100 * BRIGHTNESS)}": _torch_perturbation(train_data.adjust_brightness, 1 + BRIGHTNESS),
        f"brightness-{round(100 * BRIGHTNESS)}": _torch_perturbation(train_data.adjust_brightness, 1 - BRIGHTNESS),
        f"contrast+{round(100 * CONTRAST)}": _torch_perturbation(train_data.adjust_contrast, 1 + CONTRAST),
        f"contrast-{round(100 * CONTRAST)}": _torch_perturbation(train_data.adjust_contrast, 1 - CONTRAST),
        "blur": _corruption("blur", seed),
        "noise": _corruption("noise", seed),
        "hflip": lambda images: np.ascontiguousarray(images[:, :, ::-1]),
    }
    if vae_dir:
        chosen["vae"] = lambda images: train_data.vae_reconstructions(vae_dir, images, device).cpu().numpy()
    return chosen


# ---------------------------------------------------------------- a shared sample


@dataclasses.dataclass
class Sample:
    """Test renders, their perturbed copies (``images["clean"]`` and one array per perturbation) and a
    cache of embeddings per (backbone name, condition)."""

    scenes: list[Scene]
    images: dict[str, np.ndarray]
    cache: dict = dataclasses.field(default_factory=dict)

    def image_embeddings(self, backbone, condition: str) -> np.ndarray:
        key = (backbone.name, "image", condition)
        if key not in self.cache:
            self.cache[key] = backbone.encode_images(list(self.images[condition]))
        return self.cache[key]

    def text_embeddings(self, backbone, texts: list[str]) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if (backbone.name, "text", text) not in self.cache]
        if missing:
            for text, embedding in zip(missing, backbone.encode_texts(missing)):
                self.cache[(backbone.name, "text", text)] = embedding
        return np.stack([self.cache[(backbone.name, "text", text)] for text in texts])


def make_sample(n: int = 500, seed: int = 0, vae_dir=None, device: str = "cpu",
                chosen: dict[str, Perturbation] | None = None) -> Sample:
    """``held_out_scenes(n, seed)`` rendered, and perturbed by ``chosen`` (default :func:`perturbations`)."""
    scenes = held_out_scenes(n, seed)
    clean = np.stack([render(scene) for scene in scenes])
    chosen = perturbations(vae_dir, device, seed) if chosen is None else chosen
    if "clean" in chosen:
        raise ValueError("'clean' names the unperturbed renders; pick another perturbation name")
    return Sample(scenes, {"clean": clean, **{name: np.asarray(f(clean)) for name, f in chosen.items()}})


def _backbone(backbone, device):
    if isinstance(backbone, str):
        from metrics.backbones import load_backbone

        return load_backbone(backbone, device=device)
    return backbone


def _mean_ci(values, n_boot: int, seed: int) -> dict:
    from metrics.stats import bootstrap_mean_ci

    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "ci95": list(bootstrap_mean_ci(values, n_boot=n_boot, seed=seed))}


def _perturbed(sample: Sample, with_captions: bool) -> list[str]:
    return [name for name in sample.images if name != "clean" and not (with_captions and name in ATTRIBUTE_CHANGING)]


# ---------------------------------------------------------------- measures


def image_consistency(backbone, sample: Sample | None = None, n_boot: int = 1000, seed: int = 0,
                      device: str = "cpu", **sample_options) -> dict:
    """Per perturbation: mean CLIP-I (cosine) of render and perturbed copy, with ``ci95``, and ``n``."""
    from metrics.clip_scores import clip_i

    backbone = _backbone(backbone, device)
    sample = sample or make_sample(device=device, **sample_options)
    clean = sample.image_embeddings(backbone, "clean")
    results = {}
    for name in _perturbed(sample, with_captions=False):
        cosines = clip_i(clean, sample.image_embeddings(backbone, name))
        results[name] = {**_mean_ci(cosines, n_boot, seed), "n": len(cosines)}
    return results


def caption_consistency(backbone, sample: Sample | None = None, n_boot: int = 1000, seed: int = 0,
                        device: str = "cpu", **sample_options) -> dict:
    """CLIP-T (cosine) of each render's true full caption, clean and perturbed.

    ``clean``: mean and ``ci95``; each perturbation: its mean and ``ci95``,
    ``ratio`` (perturbed mean / clean mean) and ``ratio_ci95`` (paired
    bootstrap over renders).
    """
    from metrics.clip_scores import clip_t

    backbone = _backbone(backbone, device)
    sample = sample or make_sample(device=device, **sample_options)
    texts = sample.text_embeddings(backbone, [caption(scene) for scene in sample.scenes])
    clean = clip_t(sample.image_embeddings(backbone, "clean"), texts)
    results = {"clean": {**_mean_ci(clean, n_boot, seed), "n": len(clean)}}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(clean), size=(n_boot, len(clean)))
    for name in _perturbed(sample, with_captions=True):
        scores = clip_t(sample.image_embeddings(backbone, name), texts)
        ratios = scores[draws].mean(axis=1) / clean[draws].mean(axis=1)
        results[name] = {**_mean_ci(scores, n_boot, seed), "ratio": float(scores.mean() / clean.mean()),
                         "ratio_ci95": [float(v) for v in np.percentile(ratios, [2.5, 97.5])], "n": len(scores)}
    return results


def wrong_attribute_captions(scene: Scene, attribute: str) -> list[str]:
    """The full caption of ``scene`` with ``attribute`` set to each other value (non-blob scenes)."""
    from ipbench.world.render import SHAPES
    from ipbench.world.train_data import ATTRIBUTE_VALUES

    values = SHAPES if attribute == "shape" else [v for v in ATTRIBUTE_VALUES[attribute] if v is not None]
    return [caption(dataclasses.replace(scene, **{attribute: value}))
            for value in values if value != getattr(scene, attribute)]


def attribute_auc(backbone, sample: Sample | None = None, device: str = "cpu", **sample_options) -> dict:
    """ROC AUC of true captions against one-attribute-wrong captions, per condition and attribute.

    Over the sample's non-blob scenes (a blob names no texture, and its
    palette fixes its colour): positives are each render's CLIP-T with its own
    full caption, negatives its CLIP-T with that caption with ``attribute`` set
    to every other value (shapes among the named shapes). Keys: ``clean`` and
    each caption-keeping perturbation, each a dict attribute -> AUC, plus ``n``.
    """
    from ipbench.world.clip_train import roc_auc

    backbone = _backbone(backbone, device)
    sample = sample or make_sample(device=device, **sample_options)
    named = [k for k, scene in enumerate(sample.scenes) if scene.shape != BLOB]
    own = sample.text_embeddings(backbone, [caption(sample.scenes[k]) for k in named])
    wrong = {}
    for attribute in ATTRIBUTES:
        texts = [wrong_attribute_captions(sample.scenes[k], attribute) for k in named]
        owner = np.repeat(np.arange(len(named)), [len(t) for t in texts])
        wrong[attribute] = owner, sample.text_embeddings(backbone, [text for group in texts for text in group])
    results = {"n": len(named)}
    for condition in ["clean", *_perturbed(sample, with_captions=True)]:
        images = sample.image_embeddings(backbone, condition)[named]
        positives = np.sum(images * own, axis=1)
        results[condition] = {
            attribute: roc_auc(positives, np.sum(images[owner] * embeddings, axis=1))
            for attribute, (owner, embeddings) in wrong.items()
        }
    return results


def subject_auc(backbone, n_subjects: int = 50, n_refs: int = 4, device: str = "cpu") -> dict:
    """Same-subject ROC AUC of image-embedding cosines over the held-out subjects' reference renders.

    Positives: pairs of references of one subject; ``auc`` against all pairs of
    different subjects, ``auc_same_colour`` against different subjects of the
    same colour (the hard case). Also the mean cosines ``same`` and
    ``different_same_colour``, and the pair counts.
    """
    from ipbench.world.clip_train import roc_auc

    backbone = _backbone(backbone, device)
    references = [(subject.subject_id, subject.colour, scene) for subject in subject_set(n_subjects, n_refs)
                  for scene in subject.references]
    embeddings = backbone.encode_images([render(scene) for _, _, scene in references])
    upper = np.triu_indices(len(references), k=1)
    scores = (embeddings @ embeddings.T)[upper]
    ids = np.array([subject_id for subject_id, _, _ in references])
    colours = np.array([colour for _, colour, _ in references])
    same = (ids[:, None] == ids[None, :])[upper]
    hard = ~same & (colours[:, None] == colours[None, :])[upper]
    return {
        "auc": roc_auc(scores[same], scores[~same]),
        "auc_same_colour": roc_auc(scores[same], scores[hard]) if hard.any() else float("nan"),
        "same": float(scores[same].mean()),
        "different_same_colour": float(scores[hard].mean()) if hard.any() else float("nan"),
        "n_same_pairs": int(same.sum()), "n_same_colour_pairs": int(hard.sum()), "n_subjects": n_subjects,
    }


ANALYZER_ATTRIBUTES = ("background", "position", "size", "colour")


def analyzer_agreement(sample: Sample) -> dict:
    """Per condition: the fraction of renders on which :func:`ipbench.world.analyze.analyze` reads each of
    background, position, size and colour as the scene has it, and ``all`` of them."""
    from ipbench.world.analyze import analyze

    results = {}
    for condition, images in sample.images.items():
        hits = np.array([[getattr(found, name) == getattr(scene, name) for name in ANALYZER_ATTRIBUTES]
                         for found, scene in ((analyze(image), scene) for image, scene in zip(images, sample.scenes))])
        results[condition] = {**{name: float(hits[:, k].mean()) for k, name in enumerate(ANALYZER_ATTRIBUTES)},
                              "all": float(hits.all(axis=1).mean())}
    return results


def robustness_report(backbone, n: int = 500, seed: int = 0, vae_dir=None, n_subjects: int = 50,
                      device: str = "cpu", n_boot: int = 1000, analyzer: bool = False,
                      sample: Sample | None = None) -> dict:
    """Every measure above on one sample: ``image``, ``subjects``, and for a CLIP ``caption`` and
    ``attribute_auc``; ``analyzer`` (optional, backbone-free) the analyzer's agreement.

    ``sample`` (from :func:`make_sample`) lets several backbones share one set of renders and
    perturbed copies; by default one is made from ``n``, ``seed`` and ``vae_dir``.
    """
    backbone = _backbone(backbone, device)
    sample = sample or make_sample(n, seed, vae_dir, device)
    report = {"backbone": backbone.name, "n": n, "seed": seed,
              "image": image_consistency(backbone, sample, n_boot=n_boot, seed=seed),
              "subjects": subject_auc(backbone, n_subjects, device=device)}
    if backbone.embed_texts is not None:
        report["caption"] = caption_consistency(backbone, sample, n_boot=n_boot, seed=seed)
        report["attribute_auc"] = attribute_auc(backbone, sample)
    if analyzer:
        report["analyzer"] = analyzer_agreement(sample)
    return report
