"""A text-only language model for the mini world: a small T5, trained as a denoiser on captions.

Imagen's premise is a frozen encoder that never saw an image. This one is a
``T5ForConditionalGeneration`` trained only on the world's captions, by one of two
objectives from the T5 paper (Raffel et al., 2020, Table 3): ``span_corruption``
(T5's choice: the target is the masked spans alone) or ``reconstruction`` (its
"BERT-style" variant: 15% of the tokens masked or replaced, the target the whole
original caption). The world draws attributes independently, so a masked attribute
word cannot be predicted from its context, and span corruption gives the encoder no
reason to keep the visible attribute words apart; reconstruction makes it carry
every word to the decoder (docs/if-cascade.md). The encoder is saved as a
``T5EncoderModel`` with a ``T5Tokenizer`` (a unigram vocabulary of the world's
words, with character fallback and T5's sentinel tokens) in one folder.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ipbench.training.loop import ProgressSchedule, autocast, parameter_count, progress_bar, save_half, seconds_since

MAX_LENGTH = 77  # IFPipeline.encode_prompt pads and truncates prompts to 77 tokens
EXTRA_IDS = 16  # sentinel tokens; a caption of at most 16 words never needs more spans
CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.-'"


def build_tokenizer(folder, words: list[str] | None = None):
    """A ``T5Tokenizer`` (unigram, T5's layout: pad, eos, unk, pieces, sentinels last) saved in ``folder``.

    Every world word is one piece ("▁red"); a word outside the world falls back
    to single characters, and characters outside ``CHARACTERS`` to ``<unk>``.
    """
    from transformers import T5Tokenizer

    from ipbench.world.tokenizer import world_captions

    if words is None:
        counts: dict[str, int] = {}
        for text in world_captions():
            for word in text.replace(",", " ,").split():
                counts[word] = counts.get(word, 0) + 1
        words = sorted(counts)
    # Whole words score far above any split into characters, so a known word is always one piece.
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{word}", -1.0) for word in words]
    vocab += [(character, -20.0) for character in CHARACTERS]
    vocab += [(f"<extra_id_{i}>", 0.0) for i in reversed(range(EXTRA_IDS))]
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=EXTRA_IDS, model_max_length=MAX_LENGTH)
    tokenizer.save_pretrained(folder)
    return tokenizer


def t5_config(vocab_size: int, d_model: int = 128, num_layers: int = 4, num_decoder_layers: int = 2,
              num_heads: int = 4, d_ff: int = 512):
    """T5 v1.1's layout (gated GELU, untied head) in miniature; the decoder exists only for training."""
    from transformers import T5Config

    return T5Config(vocab_size=vocab_size, d_model=d_model, d_kv=d_model // num_heads, d_ff=d_ff,
                    num_layers=num_layers, num_decoder_layers=num_decoder_layers, num_heads=num_heads,
                    feed_forward_proj="gated-gelu", tie_word_embeddings=False, dropout_rate=0.0,
                    relative_attention_num_buckets=16, relative_attention_max_distance=32,
                    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)


def span_corrupt(ids: list[int], rng: np.random.Generator, sentinels: list[int], eos: int,
                 density: float = 0.25, mean_span: float = 2.0) -> tuple[list[int], list[int]]:
    """T5's span corruption of one token sequence (no EOS): (input ids, target ids), both ending in EOS.

    About ``density`` of the tokens, in spans of mean length ``mean_span``, are
    replaced in the input by one sentinel each; the target lists each sentinel
    followed by the tokens it hides.
    """
    length = len(ids)
    n_noise = int(np.clip(round(length * density), 1, max(length - 1, 1)))
    n_spans = int(np.clip(round(n_noise / mean_span), 1, min(n_noise, length - n_noise, len(sentinels))))

    def parts(total, count):  # ``total`` split into ``count`` positive lengths at random
        cuts = np.sort(rng.choice(np.arange(1, total), count - 1, replace=False)) if count > 1 else []
        return np.diff(np.concatenate([[0], cuts, [total]])).astype(int)

    noise, keep = parts(n_noise, n_spans), parts(length - n_noise, n_spans)
    inputs, targets, position = [], [], 0
    for span, (kept, hidden) in enumerate(zip(keep, noise)):
        inputs += ids[position : position + kept] + [sentinels[span]]
        targets += [sentinels[span]] + ids[position + kept : position + kept + hidden]
        position += kept + hidden
    return inputs + [eos], targets + [eos]


def reconstruct_corrupt(ids: list[int], rng: np.random.Generator, sentinels: list[int], eos: int,
                        vocab: tuple[int, int], density: float = 0.15) -> tuple[list[int], list[int]]:
    """The T5 paper's "BERT-style" objective for one sequence: (input ids, target ids), both ending in EOS.

    ``density`` of the tokens (at least one) are corrupted: 90% become the mask token (the first
    sentinel), 10% a random piece from ``vocab`` = [first, last) ids. The target is the whole original.
    """
    length = len(ids)
    n_noise = int(np.clip(round(length * density), 1, length))
    inputs = list(ids)
    for position in rng.choice(length, n_noise, replace=False):
        inputs[position] = sentinels[0] if rng.random() < 0.9 else int(rng.integers(*vocab))
    return inputs + [eos], list(ids) + [eos]


OBJECTIVES = ("span_corruption", "reconstruction")


def _caption_pool(scenes, tokenizer, variants: int, rng: np.random.Generator) -> list[list[int]]:
    """Token ids (no EOS) of ``variants`` randomly shortened captions per scene, as the UNets see them."""
    from ipbench.world.train_data import training_captions

    texts = [text for _ in range(variants) for text in training_captions(scenes, rng)[0]]
    unique, inverse = np.unique(texts, return_inverse=True)
    encoded = tokenizer(unique.tolist(), add_special_tokens=False).input_ids
    return [encoded[i] for i in inverse]


class _CorruptedBatches(torch.utils.data.Dataset):
    """Training batch ``step``: captions and their corruption drawn from (seed, step) alone, so the
    number of loader workers that build the batches never changes them."""

    def __init__(self, pool, steps: int, batch_size: int, seed: int, corrupt):
        self.pool, self.steps, self.batch_size, self.seed, self.corrupt = pool, steps, batch_size, seed, corrupt

    def __len__(self):
        return self.steps

    def __getitem__(self, step):
        rng = np.random.default_rng([self.seed, 2, step])
        return _batch(self.pool, rng.integers(len(self.pool), size=self.batch_size), rng, self.corrupt, "cpu")


def corruption(objective: str, tokenizer):
    """``corrupt(ids, rng) -> (inputs, targets)`` of ``objective`` for this tokenizer's ids (picklable)."""
    from functools import partial

    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(EXTRA_IDS)])
    if objective == "span_corruption":
        return partial(span_corrupt, sentinels=sentinels, eos=tokenizer.eos_token_id)
    if objective == "reconstruction":
        # Random replacements come from the pieces (after pad, eos, unk; before the sentinels).
        return partial(reconstruct_corrupt, sentinels=sentinels, eos=tokenizer.eos_token_id,
                       vocab=(3, min(sentinels)))
    raise ValueError(f"T5 objective {objective!r} is not one of {', '.join(OBJECTIVES)}")


def _batch(pool, index, rng, corrupt, device):
    pairs = [corrupt(pool[i], rng) for i in index]
    width_in, width_out = max(len(a) for a, _ in pairs), max(len(b) for _, b in pairs)
    inputs = torch.zeros(len(pairs), width_in, dtype=torch.long)
    labels = torch.full((len(pairs), width_out), -100, dtype=torch.long)
    for row, (a, b) in enumerate(pairs):
        inputs[row, : len(a)] = torch.tensor(a)
        labels[row, : len(b)] = torch.tensor(b)
    return inputs.to(device), (inputs != 0).long().to(device), labels.to(device)


def train_t5(out_dir, scenes, steps: int, batch_size: int = 512, lr: float = 1e-3, seed: int = 0, device=None,
             caption_variants: int = 4, architecture: dict | None = None, time_limit_s: float | None = None,
             log_every: int = 100, held_out=None, workers: int = 0, objective: str = "span_corruption") -> dict:
    """Train by ``objective`` (:data:`OBJECTIVES`) on captions of ``scenes``; save the encoder and tokenizer.

    ``held_out`` scenes give the validation loss and target-token accuracy, logged with the training loss.
    ``workers`` loader processes build the batches (span corruption is Python, and at large batches it,
    not the GPU, sets the step time).
    """
    from transformers import T5EncoderModel, T5ForConditionalGeneration

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer(out_dir)
    corrupt = corruption(objective, tokenizer)
    rng = np.random.default_rng(seed)
    pool = _caption_pool(scenes, tokenizer, caption_variants, rng)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(t5_config(len(tokenizer), **(architecture or {}))).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = ProgressSchedule(optimizer, lr, steps, time_limit_s)
    validation_batch = None
    if held_out is not None:
        held_rng = np.random.default_rng([seed, 1])
        held_pool = _caption_pool(held_out, tokenizer, 1, held_rng)
        validation_batch = _batch(held_pool, range(len(held_pool)), held_rng, corrupt, device)
    history, step = [], 0
    started = time.perf_counter()
    bar = progress_bar(steps, "t5_text")
    batches = torch.utils.data.DataLoader(_CorruptedBatches(pool, steps, batch_size, seed, corrupt),
                                          batch_size=None, num_workers=workers, pin_memory=device.type == "cuda")
    for step, (inputs, mask, labels) in enumerate(batches):
        if schedule.finished(step):
            break
        bar.update()
        current_lr = schedule.set_lr(step)
        inputs, mask, labels = (t.to(device, non_blocking=True) for t in (inputs, mask, labels))
        with autocast(device):
            loss = model(input_ids=inputs, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % log_every == 0 or step == steps - 1:
            row = {"step": step, "loss": loss.item(), "lr": current_lr}
            if validation_batch is not None:
                row.update(_validation(model, validation_batch))
                model.train()
            history.append(row)
    else:
        step = steps
    bar.close()
    train_seconds = seconds_since(started, device)
    encoder = T5EncoderModel(model.config)
    missing = encoder.load_state_dict(model.state_dict(), strict=False).missing_keys
    if missing:
        raise RuntimeError(f"T5 encoder weights missing from the trained model: {missing[:3]}")
    save_half(encoder.eval(), out_dir)
    return {"objective": objective, "steps": steps, "stopped_at_step": step, "batch_size": batch_size, "lr": lr, "seed": seed,
            "caption_variants": caption_variants, "n_captions": len(pool), "vocab_size": len(tokenizer),
            "parameters_encoder": parameter_count(encoder), "parameters_with_decoder": parameter_count(model),
            "train_seconds": train_seconds, "seconds_per_step": train_seconds / max(step, 1), "device": str(device),
            "first_loss": history[0]["loss"] if history else None,
            "final_loss": history[-1]["loss"] if history else None, "history": history}


@torch.no_grad()
def _validation(model, batch) -> dict:
    inputs, mask, labels = batch
    model.eval()
    out = model(input_ids=inputs, attention_mask=mask, labels=labels)
    hidden = labels != -100
    correct = (out.logits.argmax(-1) == labels) & hidden
    return {"val_loss": float(out.loss), "val_token_accuracy": float(correct.sum() / hidden.sum())}


def load_t5(folder, device="cpu"):
    """(tokenizer, encoder) of a folder written by :func:`train_t5` (or any T5 encoder folder), float32."""
    from transformers import AutoTokenizer, T5EncoderModel

    encoder = T5EncoderModel.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    return AutoTokenizer.from_pretrained(folder), encoder


def evaluate_t5(folder, held_out, device="cpu", seed: int = 0) -> dict:
    """How far the encoder's states move when a caption changes one attribute (as for the CLIPs), and how
    many held-out captions hit ``<unk>``. The held-out span-corruption numbers need the decoder, so
    they are logged during training (``history``)."""
    from ipbench.world.cascade import encode_prompts
    from ipbench.world.clip_train import state_displacement

    tokenizer, encoder = load_t5(folder, device)
    unknown = [text for text in _sample_captions(held_out) if tokenizer.unk_token_id in tokenizer(text).input_ids]
    displacement = state_displacement(lambda texts: encode_prompts(tokenizer, encoder, texts, device), seed=seed)
    return {**{f"text_state_l2_{key}": value for key, value in displacement.items() if key != "n"},
            "captions_with_unknown_tokens": len(unknown)}


def _sample_captions(scenes):
    from ipbench.world.render import caption

    return [caption(scene) for scene in scenes]
