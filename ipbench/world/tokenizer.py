"""A CLIP tokenizer whose vocabulary holds every word of the mini world's captions as one token.

The vocabulary is CLIP's layout in miniature: every byte-level character, alone
and as a word end (``c</w>``), then one token per caption word (``word</w>``)
with the BPE merges that assemble it from its characters left to right, then
the start and end tokens. A word outside the world still tokenizes, character
by character.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
from pathlib import Path

from ipbench.world.render import (
    ATTRIBUTES, BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, TEXTURES, Scene, caption, subject_set,
)

MAX_LENGTH = 32  # text positions; the longest caption takes 16
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
WORD_END = "</w>"


@functools.lru_cache(maxsize=1)
def _splitter():
    """CLIP's own normalizer and pre-tokenizer (lower-casing, word split, byte-level characters)."""
    from transformers import CLIPTokenizer

    backend = CLIPTokenizer().backend_tokenizer
    return backend.normalizer, backend.pre_tokenizer


def split_words(text: str) -> list[tuple[str, str]]:
    """(normalised text, byte-level form) of each word that CLIP's pre-tokenizer cuts ``text`` into."""
    normalizer, pre_tokenizer = _splitter()
    normalized = normalizer.normalize_str(text)
    pieces = pre_tokenizer.pre_tokenize_str(normalized)
    return [(normalized[start:end], piece) for piece, (start, end) in pieces]


def world_captions() -> list[str]:
    """Captions that together use every word a mini-world caption can contain.

    Every value of every attribute appears in some scene, and each scene is
    captioned with every subset of attributes dropped (articles and "object"
    depend on what is left); the held-out subjects' prompts are added too.
    """
    base = Scene("circle", "red", "plain", "small", "center", "sand")
    values = {"size": SIZES, "colour": COLOURS, "texture": TEXTURES, "shape": SHAPES,
              "background": BACKGROUNDS, "position": POSITIONS}
    scenes = [dataclasses.replace(base, **{name: value}) for name, options in values.items()
              for value in options]
    subject = subject_set(1)[0]
    scenes.append(subject.references[0])  # a blob
    drops = [set(combo) for k in range(len(ATTRIBUTES) + 1)
             for combo in itertools.combinations(ATTRIBUTES, k)]
    texts = [caption(scene, drop) for scene in scenes for drop in drops]
    return texts + [prompt.text for prompt in subject.prompts]


def world_words() -> list[str]:
    """Every distinct word (byte-level form) of the world's captions, sorted."""
    return sorted({piece for text in world_captions() for _, piece in split_words(text)})


def _assembling_merges(words: list[str], base_vocab: dict[str, int]) -> list[tuple[str, str]]:
    """BPE merges under which each of ``words`` becomes the single token ``word</w>``.

    Words are taken in turn; while the current merges leave a word in several
    pieces, the merge of its first two pieces is appended. An appended merge
    ranks after all earlier ones, and BPE always applies the best-ranked merge
    available, so a word already assembled keeps assembling the same way.
    """
    from tokenizers.models import BPE

    merges: list[tuple[str, str]] = []
    vocab = dict(base_vocab)
    for word in words:
        while True:
            model = BPE(vocab=vocab, merges=merges, end_of_word_suffix=WORD_END, continuing_subword_prefix="")
            pieces = [token.value for token in model.tokenize(word)]
            if len(pieces) == 1:
                break
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
    return merges


def build_tokenizer(folder: str | os.PathLike, words: list[str] | None = None):
    """Write vocab.json, merges.txt and the tokenizer files into ``folder``; return the loaded CLIPTokenizer.

    ``words`` defaults to :func:`world_words`.
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    characters = sorted(ByteLevel.alphabet())
    base_vocab = {token: index for index, token in enumerate(characters + [c + WORD_END for c in characters])}
    merges = _assembling_merges(world_words() if words is None else words, base_vocab)
    vocab = dict(base_vocab)
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    vocab.update({BOS: len(vocab), EOS: len(vocab) + 1})
    (folder / "vocab.json").write_text(json.dumps(vocab, indent=0))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    tokenizer = CLIPTokenizer.from_pretrained(folder, model_max_length=MAX_LENGTH)
    tokenizer.save_pretrained(folder)
    return tokenizer


def unknown_words(tokenizer_or_vocab, text: str) -> list[str]:
    """The words of ``text`` (as CLIP splits and lower-cases them) that are not one vocabulary token."""
    vocab = tokenizer_or_vocab if isinstance(tokenizer_or_vocab, dict) else tokenizer_or_vocab.get_vocab()
    return [written for written, piece in split_words(text) if piece + WORD_END not in vocab]
