"""CLIP-T, CLIP-I, DINO and directional CLIP scores from embeddings.

Inputs are (N, D) embedding arrays (``Backbone.encode_*``); they are
re-normalised here, so any embeddings work. Papers report CLIP similarity on
different scales; ``convention`` picks one (see ``CONVENTIONS``).
"""
from __future__ import annotations

import numpy as np

CONVENTIONS = {
    "cosine": "raw cosine (IP-Adapter, DreamBench)",
    "x100": "100*max(cos,0) (torchmetrics CLIPScore)",
    "clipscore": "2.5*max(cos,0) (CLIPScore paper, w=2.5)",
}


def apply_convention(cos: np.ndarray, convention: str = "cosine") -> np.ndarray:
    """Map cosines onto the scale a paper reports."""
    cos = np.asarray(cos, dtype=np.float64)
    if convention == "cosine":
        return cos
    if convention == "x100":
        return 100.0 * np.maximum(cos, 0.0)
    if convention == "clipscore":
        return 2.5 * np.maximum(cos, 0.0)
    raise ValueError(f"unknown CLIP score convention {convention!r}; choose one of {sorted(CONVENTIONS)}")


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"expected an (N, D) embedding array, got shape {vectors.shape}")
    # A zero vector (e.g. an edit that changed nothing) gets cosine 0, not NaN.
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def paired_cosine(emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray:
    """Cosine of row i of ``emb_a`` with row i of ``emb_b``."""
    a, b = _unit(emb_a), _unit(emb_b)
    if a.shape != b.shape:
        raise ValueError(f"embedding pairs need equal shapes, got {a.shape} and {b.shape}")
    return np.sum(a * b, axis=1)


def clip_t(img_emb: np.ndarray, txt_emb: np.ndarray, convention: str = "cosine") -> np.ndarray:
    """Image-text alignment of each (image, prompt) pair."""
    return apply_convention(paired_cosine(img_emb, txt_emb), convention)


def clip_i(emb_a: np.ndarray, emb_b: np.ndarray, convention: str = "cosine") -> np.ndarray:
    """Image-image similarity of each pair (CLIP-I, or DINO with DINO embeddings)."""
    return apply_convention(paired_cosine(emb_a, emb_b), convention)


def mean_pairwise(emb_gen: np.ndarray, emb_ref: np.ndarray) -> np.ndarray:
    """DreamBench: each generated image's mean cosine over all real images of its subject."""
    return (_unit(emb_gen) @ _unit(emb_ref).T).mean(axis=1)


def directional_clip(
    src_img: np.ndarray, tgt_img: np.ndarray, src_txt: np.ndarray, tgt_txt: np.ndarray
) -> np.ndarray:
    """cos(E(tgt_img) - E(src_img), E(tgt_txt) - E(src_txt)) per pair (StyleGAN-NADA, Asyrp).

    Differences are taken between unit-norm embeddings, as those papers do.
    """
    shapes = {np.shape(e) for e in (src_img, tgt_img, src_txt, tgt_txt)}
    if len(shapes) != 1:
        raise ValueError(f"directional CLIP needs four equal-shape embedding arrays, got {sorted(shapes)}")
    image_direction = _unit(tgt_img) - _unit(src_img)
    text_direction = _unit(tgt_txt) - _unit(src_txt)
    return paired_cosine(image_direction, text_direction)
