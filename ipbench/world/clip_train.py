"""Small CLIPs trained contrastively on mini-world (render, caption) pairs, saved like Hub CLIPs.

Two presets: ``conditioning`` (its text encoder conditions the world's UNet, its
image encoder feeds IP-Adapter and unCLIP) and ``judge`` (scores generated
images; another seed and architecture, so it does not share the conditioning
model's blind spots).

Training is CLIP's symmetric InfoNCE with a learned temperature, with these
changes for templated captions: a caption with attributes dropped ("a red
object") is true of many images in a batch, so every image it describes
counts as a positive; blob *twins* (the same blob drawn twice, see
:mod:`ipbench.world.train_data`) add an image-image InfoNCE term, so that image
embeddings tell one blob from another (CLIP-I), which no caption names;
linear attribute classifiers on the image embedding, used in training only,
speed up learning the fine attributes (shape, texture); *hard negatives*,
captions one attribute away from an image's own, join the image-to-text
softmax, since a random batch almost never holds two images that only
position tells apart (without them the text tower all but ignores position
words); and augmentations that keep every named attribute true (brightness,
contrast, hue, 1-px shifts, blur, noise, VAE reconstructions) make the judge
score content rather than render statistics.
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
# augment's blur and noise (train_data.degrade); at blur 0.8 px the shape CNN misreads 1.5% of textures.
MAX_BLUR, MAX_NOISE = 0.7, 8 / 255


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
    codes: torch.Tensor  # (N, A) attribute value codes (train_data.value_codes)
    token_ids: torch.Tensor  # (N, V, L) caption variants, tokenized
    token_mask: torch.Tensor  # (N, V, L)
    omitted: torch.Tensor  # (N, V, A) bool: attributes each caption variant leaves out


def _tokenize_variants(tokenizer, scenes, variants: int, rng: np.random.Generator, width: int | None = None):
    texts, omitted = zip(*(train_data.training_captions(scenes, rng) for _ in range(variants)))
    texts = [text for variant in zip(*texts) for text in variant]  # image-major: (N * V)
    unique, inverse = np.unique(texts, return_inverse=True)  # far fewer distinct captions than pairs
    padding = {"padding": "max_length", "max_length": width} if width else {"padding": True}
    tokens = tokenizer(unique.tolist(), truncation=True, return_tensors="pt",
                       **{"max_length": MAX_LENGTH, **padding})
    inverse = torch.from_numpy(inverse.reshape(len(scenes), variants))
    return tokens["input_ids"][inverse], tokens["attention_mask"][inverse], np.stack(omitted, axis=1)


def _to_device(data: dict, tokenizer, seed: int, device: torch.device, width: int | None = None) -> _DeviceData:
    token_ids, token_mask, omitted = _tokenize_variants(
        tokenizer, data["scenes"], CAPTION_VARIANTS, np.random.default_rng([seed, 7]), width
    )
    return _DeviceData(
        images=torch.from_numpy(data["images"]).to(device),
        twin_images=torch.from_numpy(data["twin_images"]).to(device),
        twin_source=torch.from_numpy(data["twin_source"]).to(device),
        codes=torch.from_numpy(train_data.value_codes(data["scenes"])).to(device),
        token_ids=token_ids.to(device),
        token_mask=token_mask.to(device),
        omitted=torch.from_numpy(omitted).to(device),
    )


def _pixels(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, generator, augment: bool,
            keep_attributes: dict | None = None):
    """uint8 NHWC -> normalised float NCHW, as the saved image processor does, plus light degradation.

    ``keep_attributes``: keyword arguments of :func:`train_data.keep_attributes_augment`
    (brightness, contrast, hue, translation), applied before blur and noise.
    """
    pixels = images.permute(0, 3, 1, 2).float() / 255.0
    if keep_attributes:
        pixels = train_data.keep_attributes_augment(pixels, generator, **keep_attributes)
    if augment:
        pixels = train_data.degrade(pixels, generator, max_blur=MAX_BLUR, max_noise=MAX_NOISE)
    return (pixels - mean) / std


def _multi_positive_nce(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each row's softmax against a uniform distribution over its positives."""
    targets = positives.float() / positives.sum(dim=1, keepdim=True)
    return -(targets * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def hard_negative_targets(codes, omitted, negative_codes, negative_omitted, valid):
    """Image-to-text positives over [batch captions, hard negatives]: (B, B + B*k) bool.

    Row ``i`` marks every candidate caption true of image ``i``: batch caption
    ``j`` when it is (as in :func:`train_data.caption_true_of`), and hard negative
    ``(j, m)`` (flattened j-major) when it is too, since a negative of image ``j``
    may describe image ``i``. Invalid negatives are never positives.
    """
    batch_true = train_data.caption_true_of(codes, omitted)  # (text, image)
    flat_codes, flat_omitted = negative_codes.flatten(0, 1), negative_omitted.flatten(0, 1)
    negative_true = train_data.texts_true_of(flat_codes, flat_omitted, codes) & valid.reshape(-1, 1)
    return torch.cat([batch_true.T, negative_true.T], dim=1)


# ---------------------------------------------------------------- training

# Per-preset defaults of train_clip's recipe options (a keyword argument left at None takes these).
RECIPES = {
    "conditioning": {"hard_negatives": 4, "hard_negative_position_weight": 3.0, "position_head_weight": 6.0,
                     "head_warmup_steps": 300,
                     "brightness": 0.0, "contrast": 0.0, "hue_degrees": 0.0, "translate": 0},
    "judge": {"hard_negatives": 2, "hard_negative_position_weight": 1.0, "position_head_weight": 6.0,
              "head_warmup_steps": 300,
              "brightness": train_data.BRIGHTNESS,
              "contrast": train_data.CONTRAST, "hue_degrees": train_data.HUE_DEGREES,
              "translate": train_data.TRANSLATE},
}
VALIDATION_SEED = 0  # the val split's scenes 0..val_n-1 are train_clip's in-training validation set


def _validation_set(tokenizer, n: int, device):
    """Pixels of ``n`` val-split renders, zero-shot prompts (position, colour), and their full captions
    with each of the 9 positions."""
    from ipbench.world.render import sample_scene, scene_rng

    scenes = [sample_scene(scene_rng("val", VALIDATION_SEED, index), "val") for index in range(n)]
    tokens = {}
    for attribute in ("position", "colour"):
        tokens[attribute] = tokenizer(zero_shot_prompts(attribute), padding=True, return_tensors="pt").to(device)
    variants = [caption(dataclasses.replace(scene, position=position)) for scene in scenes for position in POSITIONS]
    tokens["templated"] = tokenizer(variants, padding=True, return_tensors="pt").to(device)
    truth = {
        "position": torch.tensor([list(POSITIONS).index(scene.position) for scene in scenes], device=device),
        "colour": torch.tensor([list(COLOURS).index(scene.colour) for scene in scenes], device=device),
    }
    images = torch.from_numpy(np.stack([render(scene) for scene in scenes])).to(device)
    return images, tokens, truth


@torch.no_grad()
def _validate(model, validation, mean, std, device) -> dict:
    from ipbench.training.loop import autocast

    images, tokens, truth = validation
    model.eval()
    with autocast(device):
        image_embeds = F.normalize(model.get_image_features(
            pixel_values=_pixels(images, mean, std, None, False)).pooler_output.float(), dim=-1)
        text = {name: F.normalize(model.get_text_features(**batch).pooler_output.float(), dim=-1)
                for name, batch in tokens.items()}
    model.train()
    results = {}
    for attribute in ("position", "colour"):
        predicted = (image_embeds @ text[attribute].T).argmax(dim=1)
        results[f"val_zero_shot_{attribute}"] = (predicted == truth[attribute]).float().mean().item()
    templated = text["templated"].reshape(len(images), len(POSITIONS), -1)
    predicted = torch.einsum("npd,nd->np", templated, image_embeds).argmax(dim=1)
    results["val_templated_position"] = (predicted == truth["position"]).float().mean().item()
    return results


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
    hard_negatives: int | None = None,
    hard_negative_position_weight: float | None = None,
    position_head_weight: float | None = None,
    head_warmup_steps: int | None = None,
    brightness: float | None = None,
    contrast: float | None = None,
    hue_degrees: float | None = None,
    translate: int | None = None,
    vae_dir=None,
    vae_probability: float = 0.25,
    time_limit_s: float | None = None,
    val_every: int = 0,
    val_n: int = 256,
    progress: bool = True,
) -> dict:
    """Train a ``preset`` CLIP on a :func:`train_data.render_training_set` set; save it to ``out_dir``.

    Each step takes ``batch_size`` (image, caption variant) pairs, an eighth of
    them blobs whose twins join the batch for the image-image term (weight
    ``pair_weight``). With ``attribute_weight`` > 0, linear heads on the image
    embedding also classify each attribute (dropped after training): captions
    alone teach shape and texture slowly, since a batch rarely holds images that
    differ in nothing else; the position head's loss counts ``position_head_weight``
    times (the blob-twin term, whose twins always move, pulls the image embedding
    towards ignoring position, and a weak position signal never starts being
    learned); for the first ``head_warmup_steps`` steps the heads' loss is the
    only loss. Position is a second-order feature for a ViT (every patch gets
    its position embedding, so a uniformly attending CLS token sees none of
    it): alone, a vision tower picks it up after ~100 steps, but under the
    contrastive loss its gradient is lost in Adam's normalisation and the
    shipped CLIPs never learned it (position head at chance, ln 9, for 4000
    steps). AdamW, linear warmup then cosine decay over training
    progress (:class:`ProgressSchedule`), bf16 autocast on CUDA; the weights are
    saved as float16.

    Options left at None take the preset's value from ``RECIPES``:

    * ``hard_negatives`` k: per image, k captions that differ from its caption
      variant in exactly one named attribute (:func:`train_data.hard_negatives`),
      extra candidates in the image-to-text softmax; the attribute is drawn with
      weight ``hard_negative_position_weight`` for position, 1 for the others.
      Without them a batch rarely holds two images told apart by position alone,
      so nothing makes the text tower encode it.
    * ``brightness``, ``contrast``, ``hue_degrees``, ``translate``: strengths of
      :func:`train_data.keep_attributes_augment` (0 turns one off); ``augment``
      adds blur and noise (:func:`train_data.degrade`).
    * ``vae_dir``: a diffusers AutoencoderKL folder; every training image (and
      twin) is encoded and decoded once, on ``device``, and each image of a batch
      is swapped for its reconstruction with probability ``vae_probability``.

    ``time_limit_s`` bounds the whole call, preparation included (recorded as
    ``stopped_at_step``). ``val_every`` > 0 adds ``val_zero_shot_position``,
    ``val_zero_shot_colour`` and ``val_templated_position`` (full caption among
    its 9 position variants) on ``val_n`` val-split renders to the history row
    of every ``val_every``-th step and the last. Returns the settings, timings,
    and ``history`` (flat dicts of numbers, each with ``step``).
    """
    from transformers import CLIPModel

    from ipbench.training.loop import ProgressSchedule, autocast, parameter_count, progress_bar, save_half

    if preset not in PRESETS:
        raise ValueError(f"preset {preset!r}; expected one of {sorted(PRESETS)}")
    recipe = dict(RECIPES[preset])
    given = {"hard_negatives": hard_negatives, "hard_negative_position_weight": hard_negative_position_weight,
             "position_head_weight": position_head_weight, "head_warmup_steps": head_warmup_steps,
             "brightness": brightness, "contrast": contrast, "hue_degrees": hue_degrees, "translate": translate}
    recipe.update({key: value for key, value in given.items() if value is not None})
    n_negatives = int(recipe["hard_negatives"])
    seed = PRESETS[preset]["seed"] if seed is None else seed
    device = torch.device(device)
    out_dir = Path(out_dir)
    started = time.perf_counter()

    tokenizer = build_tokenizer(out_dir)
    processor = image_processor()
    torch.manual_seed(seed)
    model = CLIPModel(clip_config(preset, tokenizer)).to(device).train()
    assembler = train_data.CaptionTokens(tokenizer, device) if n_negatives else None
    on_device = _to_device(data, tokenizer, seed, device, assembler.max_length if assembler else None)
    n_classes = [len(values) for values in train_data.ATTRIBUTE_VALUES.values()]
    heads = torch.nn.ModuleList(torch.nn.Linear(model.config.projection_dim, n) for n in n_classes).to(device)
    mean = torch.tensor(processor.image_mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(processor.image_std, device=device).view(1, 3, 1, 1)
    keep_attributes = {"brightness": recipe["brightness"], "contrast": recipe["contrast"],
                       "hue_degrees": recipe["hue_degrees"], "max_shift": int(recipe["translate"])}
    keep_attributes = keep_attributes if any(keep_attributes.values()) else None
    weights = torch.ones(len(ATTRIBUTES), device=device)
    weights[ATTRIBUTES.index("position")] = recipe["hard_negative_position_weight"]
    position = ATTRIBUTES.index("position")
    vae_seconds = 0.0
    if vae_dir:
        vae_started = time.perf_counter()
        recon = train_data.vae_reconstructions(vae_dir, on_device.images, device)
        twin_recon = train_data.vae_reconstructions(vae_dir, on_device.twin_images, device)
        vae_seconds = time.perf_counter() - vae_started
    validation = _validation_set(tokenizer, val_n, device) if val_every else None
    prepared = time.perf_counter()

    trained_parameters = list(model.parameters()) + (list(heads.parameters()) if attribute_weight > 0 else [])
    decay = [p for p in trained_parameters if p.ndim >= 2]
    no_decay = [p for p in trained_parameters if p.ndim < 2]  # biases, norms, temperature
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=lr,
        betas=(0.9, 0.98), eps=1e-6,
    )
    warmup = min(500, steps // 10) if warmup is None else warmup
    # The time limit covers the whole call; what preparation used up is gone (at least a sliver is left,
    # since a limit <= 0 would read as none).
    remaining = max(time_limit_s - (prepared - started), 1e-9) if time_limit_s else None
    schedule = ProgressSchedule(optimizer, lr, steps, remaining, warmup=warmup)
    generator = torch.Generator(device).manual_seed(seed)
    n_images, n_twins = len(on_device.images), len(on_device.twin_images)
    n_pairs = batch_size // 8 if n_twins and pair_weight > 0 else 0
    variants = on_device.token_ids.shape[1]

    history = []
    bar = progress_bar(steps, f"train {preset} CLIP") if progress else None
    step = 0
    for step in range(steps):
        if schedule.finished(step):
            break
        current_lr = schedule.set_lr(step)
        pairs = torch.randint(max(n_twins, 1), (n_pairs,), device=device, generator=generator)
        rest = torch.randint(n_images, (batch_size - n_pairs,), device=device, generator=generator)
        index = torch.cat([on_device.twin_source[pairs], rest])
        variant = torch.randint(variants, (batch_size,), device=device, generator=generator)
        images = torch.cat([on_device.images[index], on_device.twin_images[pairs]])
        if vae_dir:
            swap = torch.rand(len(images), device=device, generator=generator) < vae_probability
            images = torch.where(swap[:, None, None, None], torch.cat([recon[index], twin_recon[pairs]]), images)
        pixels = _pixels(images, mean, std, generator, augment, keep_attributes)
        codes, omitted = on_device.codes[index], on_device.omitted[index, variant]
        input_ids, attention_mask = on_device.token_ids[index, variant], on_device.token_mask[index, variant]
        if n_negatives:
            negative_codes, negative_omitted, changed, valid = train_data.hard_negatives(
                codes, omitted, n_negatives, generator, weights)
            negative_ids, negative_mask = assembler(negative_codes.flatten(0, 1), negative_omitted.flatten(0, 1),
                                                    width=input_ids.shape[1])
            input_ids, attention_mask = torch.cat([input_ids, negative_ids]), torch.cat([attention_mask, negative_mask])
        with autocast(device):
            output = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixels)
        scale = model.logit_scale.exp()
        image_embeds, twin_embeds = output.image_embeds[:batch_size], output.image_embeds[batch_size:]
        text_embeds = output.text_embeds[:batch_size].float()
        true_of = train_data.caption_true_of(codes, omitted)
        logits = scale * text_embeds @ image_embeds.float().T
        if n_negatives:
            negative_embeds = output.text_embeds[batch_size:].float()
            negative_logits = scale * image_embeds.float() @ negative_embeds.T  # (B, B*k)
            negative_logits = negative_logits.masked_fill(~valid.reshape(1, -1), -1e4)
            image_to_text = torch.cat([logits.T, negative_logits], dim=1)
            targets = hard_negative_targets(codes, omitted, negative_codes, negative_omitted, valid)
            loss_image_to_text = _multi_positive_nce(image_to_text, targets)
        else:
            loss_image_to_text = _multi_positive_nce(logits.T, true_of.T)
        loss_text = 0.5 * (_multi_positive_nce(logits, true_of) + loss_image_to_text)
        loss = loss_text
        if n_pairs:
            same_blob = pairs[:, None] == pairs[None, :]
            pair_logits = scale * image_embeds[:n_pairs].float() @ twin_embeds.float().T
            loss_pair = 0.5 * (
                _multi_positive_nce(pair_logits, same_blob) + _multi_positive_nce(pair_logits.T, same_blob)
            )
            loss = loss + pair_weight * loss_pair
        if attribute_weight > 0:
            losses = [F.cross_entropy(head(image_embeds.float()), codes[:, k]) for k, head in enumerate(heads)]
            loss_attributes = (sum(losses) + (recipe["position_head_weight"] - 1) * losses[position]) / len(heads)
            loss = loss + attribute_weight * loss_attributes
        if attribute_weight > 0 and step < recipe["head_warmup_steps"]:
            loss = attribute_weight * loss_attributes  # image tower and heads alone (see the docstring)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained_parameters, 1.0)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        last = step == steps - 1 or schedule.finished(step + 1)
        validate_now = val_every and (step % val_every == 0 or last)
        if step % log_every == 0 or last or validate_now:
            record = {"step": step, "loss": loss.item(), "loss_text": loss_text.item(),
                      "logit_scale": scale.item(), "lr": current_lr}
            if n_pairs:
                record["loss_pair"] = loss_pair.item()
            if attribute_weight > 0:
                record["loss_attributes"] = loss_attributes.item()
                record["loss_position_head"] = losses[position].item()
            if n_negatives:
                with torch.no_grad():
                    own = logits.diagonal()[:, None]  # image i with its own caption
                    beaten = (negative_logits.reshape(batch_size, batch_size, n_negatives)
                              .diagonal(dim1=0, dim2=1).T < own) | ~valid  # (B, k): own negatives
                    record["hard_negative_accuracy"] = beaten.float().mean().item()
                    is_position = (changed == position) & valid
                    if is_position.any():
                        record["hard_negative_accuracy_position"] = beaten[is_position].float().mean().item()
            if validate_now:
                record.update(_validate(model, validation, mean, std, device))
            history.append(record)
        if bar is not None:
            bar.update(1)
    else:
        step = steps
    if bar is not None:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    trained = time.perf_counter()

    save_half(model.eval(), out_dir)  # safetensors, float16
    processor.save_pretrained(out_dir)
    metrics = {
        "preset": preset, "seed": seed, "steps": steps, "stopped_at_step": step, "batch_size": batch_size, "lr": lr,
        "pair_weight": pair_weight, "attribute_weight": attribute_weight, "augment": augment, **recipe,
        "vae_dir": str(vae_dir) if vae_dir else None, "vae_probability": vae_probability if vae_dir else 0.0,
        "time_limit_s": time_limit_s, "n_images": n_images, "n_twins": n_twins,
        "parameters": parameter_count(model), "device": str(device),
        "prepare_seconds": prepared - started, "vae_seconds": vae_seconds, "train_seconds": trained - prepared,
        "seconds_per_step": (trained - prepared) / max(step, 1),
        "pairs_per_second": step * batch_size / max(trained - prepared, 1e-9),
        "first_loss": history[0]["loss"] if history else None,
        "final_loss": history[-1]["loss"] if history else None, "history": history,
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


DISPLACED_ATTRIBUTES = ("size", "colour", "texture", "shape", "background", "position")


def text_state_displacement(clip_dir, n: int = 200, seed: int = 0, device: str = "cpu") -> dict:
    """:func:`state_displacement` of a CLIPModel folder's text tower, padded as
    :func:`ipbench.world.pipeline.encode_text` feeds the UNet."""
    from ipbench.world.pipeline import encode_text, load_clip_towers

    tokenizer, text_encoder, _, _ = load_clip_towers(clip_dir)
    text_encoder = text_encoder.to(device)
    return state_displacement(lambda texts: encode_text(tokenizer, text_encoder, texts, device), n, seed)


def state_displacement(encode, n: int = 200, seed: int = 0) -> dict:
    """How far a text encoder's conditioning moves when a caption changes one attribute's value.

    ``encode(texts)`` gives the (B, L, D) states a UNet attends to. For the first
    ``n`` non-blob scenes of ``held_out_scenes`` (blobs have no texture to
    change), the mean L2 distance between the whole (L, D) states of the full
    caption and of the caption with that attribute set to another value, drawn
    uniformly (seeded). Keys: each attribute of ``DISPLACED_ATTRIBUTES``;
    ``position_top_left_bottom_right``, the same caption with "top left" and
    with "bottom right"; ``position_over_colour``, the ratio of the position and
    colour figures (comparable across encoders of different widths); and ``n``.
    """
    scenes = _non_blob_scenes(n, seed)
    rng = np.random.default_rng([seed, 11])

    def states(texts):
        with torch.no_grad():
            return torch.cat([encode(texts[i : i + 256]).float().cpu() for i in range(0, len(texts), 256)])

    def distance(a, b):
        return float((states(a) - states(b)).flatten(1).norm(dim=1).mean())

    base = [caption(scene) for scene in scenes]
    values = {**ZERO_SHOT_VALUES, "shape": SHAPES}
    results = {}
    for attribute in DISPLACED_ATTRIBUTES:
        changed = [caption(dataclasses.replace(scene, **{attribute: str(rng.choice(
            [v for v in values[attribute] if v != getattr(scene, attribute)]))})) for scene in scenes]
        results[attribute] = distance(base, changed)
    results["position_top_left_bottom_right"] = distance(
        [caption(dataclasses.replace(scene, position="top left")) for scene in scenes],
        [caption(dataclasses.replace(scene, position="bottom right")) for scene in scenes])
    results["position_over_colour"] = results["position"] / results["colour"]
    results["n"] = len(scenes)
    return results


def _non_blob_scenes(n: int, seed: int) -> list[Scene]:
    """The first ``n`` non-blob scenes of the test split's stream (``held_out_scenes`` without its blobs)."""
    from ipbench.world.render import sample_scene, scene_rng

    scenes, index = [], 0
    while len(scenes) < n:
        scene = sample_scene(scene_rng("test", seed, index), "test")
        if scene.shape != BLOB:
            scenes.append(scene)
        index += 1
    return scenes


# ---------------------------------------------------------------- command line
