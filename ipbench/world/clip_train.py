"""Small CLIPs trained contrastively on mini-world (render, caption) pairs, saved like Hub CLIPs.

Two presets: ``conditioning`` (its text encoder conditions the world's UNet, its
image encoder feeds IP-Adapter and unCLIP) and ``judge`` (scores generated
images; another seed and architecture, so it does not share the conditioning
model's blind spots).

Training is CLIP's symmetric InfoNCE with a learned temperature, with three
changes for templated captions: a caption with attributes dropped ("a red
object") is true of many images in a batch, so every image it describes
counts as a positive; blob *twins* (the same blob drawn twice, see
:mod:`ipbench.world.train_data`) add an image-image InfoNCE term, so that image
embeddings tell one blob from another (CLIP-I), which no caption names; and
linear attribute classifiers on the image embedding, used in training only,
speed up learning the fine attributes (shape, texture).
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ipbench.world import train_data
from ipbench.world.render import (
    ATTRIBUTES, BACKGROUNDS, BLOB, COLOURS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES, TEXTURES, Scene, caption,
    held_out_scenes, render, subject_set,
)
from ipbench.world.tokenizer import MAX_LENGTH, build_tokenizer

PRESETS = {
    "conditioning": {
        "seed": 0,
        "text": {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 4,
                 "num_attention_heads": 4},
        "vision": {"patch_size": 8, "hidden_size": 192, "intermediate_size": 768, "num_hidden_layers": 4,
                   "num_attention_heads": 4},
        "projection_dim": 128,
    },
    "judge": {
        "seed": 1,
        "text": {"hidden_size": 96, "intermediate_size": 384, "num_hidden_layers": 3,
                 "num_attention_heads": 3},
        "vision": {"patch_size": 8, "hidden_size": 160, "intermediate_size": 640, "num_hidden_layers": 6,
                   "num_attention_heads": 5},
        "projection_dim": 96,
    },
}
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's clamp on the learned temperature
CAPTION_VARIANTS = 8  # captions (each with its own random drops) pre-tokenized per image


def clip_config(preset: str, tokenizer):
    from transformers import CLIPConfig

    spec = PRESETS[preset]
    return CLIPConfig(
        text_config={
            **spec["text"],
            "vocab_size": len(tokenizer),
            "max_position_embeddings": MAX_LENGTH,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**spec["vision"], "image_size": IMAGE_SIZE},
        projection_dim=spec["projection_dim"],
    )


def image_processor():
    """CLIP preprocessing for 64x64 renders: bicubic resize and centre crop to 64, OpenAI mean/std."""
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )


# ---------------------------------------------------------------- data on the training device


@dataclasses.dataclass
class _DeviceData:
    images: torch.Tensor  # (N, 64, 64, 3) uint8
    twin_images: torch.Tensor  # (M, 64, 64, 3) uint8
    twin_source: torch.Tensor  # (M,) index into images
    codes: torch.Tensor  # (N, A) attribute value codes
    token_ids: torch.Tensor  # (N, V, L) caption variants, tokenized
    token_mask: torch.Tensor  # (N, V, L)
    omitted: torch.Tensor  # (N, V, A) bool: attributes each caption variant leaves out


def _tokenize_variants(tokenizer, scenes, variants: int, rng: np.random.Generator):
    texts, omitted = zip(*(train_data.training_captions(scenes, rng) for _ in range(variants)))
    texts = [text for variant in zip(*texts) for text in variant]  # image-major: (N * V)
    unique, inverse = np.unique(texts, return_inverse=True)  # far fewer distinct captions than pairs
    tokens = tokenizer(unique.tolist(), padding=True, truncation=True, max_length=MAX_LENGTH,
                       return_tensors="pt")
    inverse = torch.from_numpy(inverse.reshape(len(scenes), variants))
    return tokens["input_ids"][inverse], tokens["attention_mask"][inverse], np.stack(omitted, axis=1)


def _to_device(data: dict, tokenizer, seed: int, device: torch.device) -> _DeviceData:
    token_ids, token_mask, omitted = _tokenize_variants(
        tokenizer, data["scenes"], CAPTION_VARIANTS, np.random.default_rng([seed, 7])
    )
    return _DeviceData(
        images=torch.from_numpy(data["images"]).to(device),
        twin_images=torch.from_numpy(data["twin_images"]).to(device),
        twin_source=torch.from_numpy(data["twin_source"]).to(device),
        codes=torch.from_numpy(train_data.attribute_codes(data["scenes"])).to(device),
        token_ids=token_ids.to(device),
        token_mask=token_mask.to(device),
        omitted=torch.from_numpy(omitted).to(device),
    )


def _pixels(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, generator, augment: bool):
    """uint8 NHWC -> normalised float NCHW, as the saved image processor does, plus light degradation."""
    pixels = images.permute(0, 3, 1, 2).float() / 255.0
    if augment:
        pixels = train_data.degrade(pixels, generator, max_blur=0.8, max_noise=8 / 255)
    return (pixels - mean) / std


def _multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row's softmax against a uniform distribution over its positives."""
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


# ---------------------------------------------------------------- training


def train_clip(
    out_dir,
    preset: str,
    data: dict,
    steps: int,
    batch_size: int = 512,
    lr: float = 1e-3,
    seed: int | None = None,
    device: str = "cuda",
    pair_weight: float = 0.5,
    attribute_weight: float = 0.5,
    augment: bool = True,
    warmup: int | None = None,
    log_every: int = 100,
) -> dict:
    """Train a ``preset`` CLIP on a :func:`train_data.render_training_set` set; save it to ``out_dir``.

    Each step takes ``batch_size`` (image, caption variant) pairs, an eighth of
    them blobs whose twins join the batch for the image-image term (weight
    ``pair_weight``). With ``attribute_weight`` > 0, linear heads on the image
    embedding also classify each attribute (dropped after training): captions
    alone teach shape and texture slowly, since a batch rarely holds images that
    differ in nothing else. AdamW, linear warmup then cosine decay, bf16
    autocast on CUDA. Returns the loss history and timings.
    """
    from transformers import CLIPModel, get_cosine_schedule_with_warmup

    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}; expected one of {sorted(PRESETS)}")
    seed = PRESETS[preset]["seed"] if seed is None else seed
    device = torch.device(device)
    out_dir = Path(out_dir)
    started = time.perf_counter()

    tokenizer = build_tokenizer(out_dir)
    processor = image_processor()
    torch.manual_seed(seed)
    model = CLIPModel(clip_config(preset, tokenizer)).to(device).train()
    on_device = _to_device(data, tokenizer, seed, device)
    n_classes = (on_device.codes.max(dim=0).values + 1).tolist()
    heads = torch.nn.ModuleList(torch.nn.Linear(model.config.projection_dim, n) for n in n_classes).to(device)
    mean = torch.tensor(processor.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std, device=device).view(1, 3, 1, 1)
    prepared = time.perf_counter()

    trained_parameters = list(model.parameters()) + (list(heads.parameters()) if attribute_weight > 0 else [])
    decay = [p for p in trained_parameters if p.ndim >= 2]
    no_decay = [p for p in trained_parameters if p.ndim < 2]  # biases, norms, temperature
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=lr,
        betas=(0.9, 0.98), eps=1e-6,
    )
    warmup = min(500, steps // 10) if warmup is None else warmup
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup, steps)
    generator = torch.Generator(device).manual_seed(seed)
    n_images, n_twins = len(on_device.images), len(on_device.twin_images)
    n_pairs = batch_size // 8 if n_twins and pair_weight > 0 else 0
    variants = on_device.token_ids.shape[1]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    history = []
    for step in range(steps):
        pairs = torch.randint(max(n_twins, 1), (n_pairs,), device=device, generator=generator)
        rest = torch.randint(n_images, (batch_size - n_pairs,), device=device, generator=generator)
        index = torch.cat([on_device.twin_source[pairs], rest])
        variant = torch.randint(variants, (batch_size,), device=device, generator=generator)
        images = torch.cat([on_device.images[index], on_device.twin_images[pairs]])
        pixels = _pixels(images, mean, std, generator, augment)
        with autocast:
            output = model(
                input_ids=on_device.token_ids[index, variant],
                attention_mask=on_device.token_mask[index, variant],
                pixel_values=pixels,
            )
        scale = model.logit_scale.exp()
        image_embeds, twin_embeds = output.image_embeds[:batch_size], output.image_embeds[batch_size:]
        true_of = train_data.caption_true_of(on_device.codes[index], on_device.omitted[index, variant])
        logits = scale * output.text_embeds.float() @ image_embeds.float().T
        loss_text = 0.5 * (_multi_positive_nce(logits, true_of) + _multi_positive_nce(logits.T, true_of.T))
        loss = loss_text
        if n_pairs:
            same_blob = pairs[:, None] == pairs[None, :]
            pair_logits = scale * image_embeds[:n_pairs].float() @ twin_embeds.float().T
            loss_pair = 0.5 * (
                _multi_positive_nce(pair_logits, same_blob) + _multi_positive_nce(pair_logits.T, same_blob)
            )
            loss = loss + pair_weight * loss_pair
        if attribute_weight > 0:
            codes = on_device.codes[index]
            loss_attributes = sum(F.cross_entropy(head(image_embeds.float()), codes[:, k])
                                  for k, head in enumerate(heads)) / len(heads)
            loss = loss + attribute_weight * loss_attributes
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained_parameters, 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        if step % log_every == 0 or step == steps - 1:
            record = {"step": step, "loss": loss.item(), "loss_text": loss_text.item(),
                      "logit_scale": scale.item()}
            if n_pairs:
                record["loss_pair"] = loss_pair.item()
            if attribute_weight > 0:
                record["loss_attributes"] = loss_attributes.item()
            history.append(record)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    trained = time.perf_counter()

    model.eval().save_pretrained(out_dir)  # safetensors
    processor.save_pretrained(out_dir)
    metrics = {
        "preset": preset, "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr,
        "pair_weight": pair_weight, "attribute_weight": attribute_weight,
        "n_images": n_images, "n_twins": n_twins,
        "parameters": sum(p.numel() for p in model.parameters()),
        "prepare_seconds": prepared - started, "train_seconds": trained - prepared,
        "pairs_per_second": steps * batch_size / max(trained - prepared, 1e-9),
        "first_loss": history[0]["loss"], "final_loss": history[-1]["loss"], "history": history,
    }
    (out_dir / "training.json").write_text(json.dumps(metrics, indent=1))
    return metrics


# ---------------------------------------------------------------- evaluation

ZERO_SHOT_VALUES = {
    "colour": tuple(COLOURS), "shape": SHAPES, "background": tuple(BACKGROUNDS), "size": tuple(SIZES),
    "position": tuple(POSITIONS), "texture": TEXTURES,
}


def zero_shot_prompts(attribute: str) -> list[str]:
    """One caption per value of ``attribute`` naming only that value, e.g. "a red object", "a star"."""
    template = Scene("circle", "red", "plain", "small", "center", "sand")
    others = set(ATTRIBUTES) - {attribute}
    return [caption(dataclasses.replace(template, **{attribute: value}), others)
            for value in ZERO_SHOT_VALUES[attribute]]


def roc_auc(positive_scores, negative_scores) -> float:
    """Probability that a random positive outscores a random negative (ties count half): Mann-Whitney U."""
    from scipy.stats import rankdata

    positive_scores, negative_scores = np.asarray(positive_scores), np.asarray(negative_scores)
    ranks = rankdata(np.concatenate([positive_scores, negative_scores]))
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate_clip(model_dir, device: str = "cpu", n: int = 1000, n_subjects: int = 50, seed: int = 0) -> dict:
    """Zero-shot attribute accuracy on ``n`` test renders and CLIP-I separation on held-out subjects.

    Goes through ``metrics.backbones.load_backbone("hf-clip:" + model_dir)``.
    Keys: ``zero_shot_<attribute>``, prompts naming only that attribute (shape
    and texture over non-blobs only); ``templated_<attribute>``, the full true
    caption against its variants in that attribute (non-blobs);
    ``clip_i_auc`` (same-subject reference pairs vs different-subject pairs),
    ``clip_i_auc_same_colour`` (against different subjects of the same colour
    only, the harder case), and the mean cosines ``clip_i_same`` / ``clip_i_different``.
    """
    from metrics.backbones import load_backbone

    backbone = load_backbone(f"hf-clip:{model_dir}", device=device)
    scenes = held_out_scenes(n, seed)
    image_embeddings = backbone.encode_images([render(scene) for scene in scenes])
    named = [k for k, scene in enumerate(scenes) if scene.shape != BLOB]
    results = {}
    for attribute, values in ZERO_SHOT_VALUES.items():
        # A blob's shape ("blob") and texture (None) are no prompt's value: index -1, not scored.
        truth = np.array([values.index(value) if value in values else -1
                          for value in (getattr(scene, attribute) for scene in scenes)])
        scored = truth >= 0
        text_embeddings = backbone.encode_texts(zero_shot_prompts(attribute))
        predicted = (image_embeddings @ text_embeddings.T).argmax(axis=1)
        results[f"zero_shot_{attribute}"] = float(np.mean(predicted[scored] == truth[scored]))
        # Full captions differing only in this attribute; non-blobs (a blob's palette fixes its colour).
        variants = [caption(dataclasses.replace(scenes[k], **{attribute: value}))
                    for k in named for value in values]
        variant_embeddings = backbone.encode_texts(variants).reshape(len(named), len(values), -1)
        predicted = np.einsum("nvd,nd->nv", variant_embeddings, image_embeddings[named]).argmax(axis=1)
        results[f"templated_{attribute}"] = float(np.mean(predicted == truth[named]))

    references = [(subject.subject_id, subject.colour, scene) for subject in subject_set(n_subjects)
                  for scene in subject.references]
    embeddings = backbone.encode_images([render(scene) for _, _, scene in references])
    cosines = embeddings @ embeddings.T
    upper = np.triu_indices(len(references), k=1)
    ids = np.array([subject_id for subject_id, _, _ in references])
    colours = np.array([colour for _, colour, _ in references])
    same = (ids[:, None] == ids[None, :])[upper]
    same_colour = (colours[:, None] == colours[None, :])[upper]
    scores = cosines[upper]
    results.update({
        "clip_i_auc": roc_auc(scores[same], scores[~same]),
        "clip_i_auc_same_colour": roc_auc(scores[same], scores[~same & same_colour])
        if np.any(~same & same_colour) else float("nan"),
        "clip_i_same": float(scores[same].mean()),
        "clip_i_different": float(scores[~same].mean()),
        "n_test": n,
        "n_subjects": n_subjects,
    })
    return results


# ---------------------------------------------------------------- command line
