"""Requests in, uint8 images out: one seeded generator per request, whatever the batch."""
from __future__ import annotations

import logging

import numpy as np

from ipbench.imageset import Request


def generators(requests: list[Request], device: str) -> list:
    """One ``torch.Generator`` per request, seeded by the request alone."""
    import torch

    return [torch.Generator(device).manual_seed(request.seed) for request in requests]


def to_uint8(images) -> list[np.ndarray]:
    """Pipeline output (``output_type="np"``, floats in [0, 1]) as uint8 HxWx3 arrays, rounded."""
    return list(np.clip(np.round(np.asarray(images, dtype=np.float64) * 255), 0, 255).astype(np.uint8))


def check_prompts(tokenizer, requests: list[Request], log: logging.Logger, limit: int | None = None,
                  unknown=None) -> None:
    """Warn, once per item, about words the tokenizer does not know and captions it will truncate.

    ``unknown(text)`` lists a text's unknown words; the default is for CLIP's
    byte-level BPE, which has no effective unknown token: an unknown word is
    split into pieces, which the mini world's tokenizer (one token per word)
    never does for a word it knows. ``limit`` defaults to the tokenizer's
    ``model_max_length``. The caption is still generated.
    """
    if unknown is None:
        from ipbench.world.tokenizer import unknown_words

        vocab = tokenizer.get_vocab()
        unknown = lambda text: unknown_words(vocab, text)  # noqa: E731
    limit = limit or tokenizer.model_max_length
    for item_id, prompt in {request.item_id: request.condition["prompt"] for request in requests}.items():
        unknown_here = unknown(prompt)
        if unknown_here:
            log.warning("item %s: words not in the tokenizer's vocabulary: %s; generating anyway", item_id,
                        ", ".join(unknown_here))
        ids = tokenizer(prompt, truncation=False).input_ids
        if len(ids) > limit:
            dropped = tokenizer.decode(ids[limit - 1:-1], skip_special_tokens=True)
            log.warning("item %s: caption is %d tokens, the text encoder takes %d; dropped: %r",
                        item_id, len(ids), limit, dropped)
