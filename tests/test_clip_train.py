"""CLIP training recipe on CPU: hard negatives, attribute-keeping augmentation, text-state displacement,
robustness measures, and a smoke run. Checked against independent computations (the renderer's own
captions, the tokenizer, the analyzers, brute-force pair counts), never against timings."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ipbench.world import clip_train, robustness, train_data
from ipbench.world.render import (
    ALL_SHAPES, ATTRIBUTES, BLOB, COLOURS, Scene, blob_palette, caption, held_out_scenes, render,
)
from ipbench.world.tokenizer import build_tokenizer
from metrics.backbones import load_backbone
from tests.tiny_models import build_tiny_dino, tiny_vae_config

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"
VALUES = train_data.ATTRIBUTE_VALUES


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_tokenizer(tmp_path_factory.mktemp("tokenizer"))


def build_world_clip(folder, seed: int = 0) -> Path:
    """A tiny random CLIPModel with the world tokenizer (32 text positions) and image processor."""
    from transformers import CLIPConfig, CLIPModel

    tokenizer = build_tokenizer(folder)
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**tower, "vocab_size": len(tokenizer), "max_position_embeddings": 32,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
        vision_config={**tower, "image_size": 64, "patch_size": 16}, projection_dim=16, initializer_factor=3.0,
    )
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    clip_train.image_processor().save_pretrained(folder)
    return Path(folder)


@pytest.fixture(scope="module")
def world_clip(tmp_path_factory):
    return build_world_clip(tmp_path_factory.mktemp("world_clip"))


# ---------------------------------------------------------------- captions from codes, hard negatives


def _blob_seed_of_colour():
    seeds, seed = {}, 0
    while len(seeds) < len(COLOURS):
        seeds.setdefault(blob_palette(seed)[0], seed)
        seed += 1
    return seeds


BLOB_SEEDS = _blob_seed_of_colour()


def scene_of(codes) -> Scene:
    """A Scene with the given value codes (a blob gets some blob of that colour): caption()'s reference."""
    values = {name: VALUES[name][int(code)] for name, code in zip(ATTRIBUTES, codes)}
    if values["shape"] == BLOB:
        values.update(texture=None, blob_seed=BLOB_SEEDS[values["colour"]])
    elif values["texture"] is None:
        values["texture"] = "plain"  # a blob turned into a shape: its caption leaves texture out anyway
    return Scene(**values)


def _drops(row):
    return {name for name, dropped in zip(ATTRIBUTES, row) if dropped}


def test_caption_tokens_match_the_tokenizer_for_every_drop_set(tokenizer):
    assembler = train_data.CaptionTokens(tokenizer)
    assert assembler.max_length == 16  # the longest caption (tests/test_world_models.py)
    scenes = held_out_scenes(40, seed=3) + [scene_of([0, 1, 4, ALL_SHAPES.index(BLOB), 0, 0])]
    drop_sets = np.array([[(mask >> k) & 1 for k in range(len(ATTRIBUTES))] for mask in range(64)], bool)
    codes = np.repeat(train_data.value_codes(scenes), len(drop_sets), axis=0)
    omitted = np.tile(drop_sets, (len(scenes), 1))
    texts = [caption(scene, _drops(row)) for scene in scenes for row in drop_sets]
    ids, mask = assembler(torch.from_numpy(codes), torch.from_numpy(omitted), width=20)
    expected = tokenizer(texts, padding="max_length", max_length=20, return_tensors="pt")
    assert torch.equal(ids, expected["input_ids"]) and torch.equal(mask, expected["attention_mask"])


def test_value_codes_index_the_global_value_lists():
    scenes = held_out_scenes(30, seed=4)
    codes = train_data.value_codes(scenes)
    for scene, row in zip(scenes, codes):
        assert [VALUES[name][code] for name, code in zip(ATTRIBUTES, row)] == [getattr(scene, n) for n in ATTRIBUTES]
    # Same-value structure as attribute_codes: caption_true_of agrees.
    omitted = np.random.default_rng(0).random(codes.shape) < 0.5
    assert np.array_equal(train_data.caption_true_of(codes, omitted),
                          train_data.caption_true_of(train_data.attribute_codes(scenes), omitted))


def test_hard_negatives_differ_in_exactly_one_named_attribute(tokenizer):
    scenes = train_data.render_training_set(200, "train", seed=5)["scenes"]
    _, omitted = train_data.training_captions(scenes, np.random.default_rng(2))
    codes = torch.from_numpy(train_data.value_codes(scenes))
    omitted = torch.from_numpy(omitted)
    omitted[0] = True  # names nothing: no hard negative
    weights = torch.ones(len(ATTRIBUTES))
    negative_codes, negative_omitted, changed, valid = train_data.hard_negatives(
        codes, omitted, 3, torch.Generator().manual_seed(0), weights)
    assert negative_codes.shape == (200, 3, len(ATTRIBUTES)) and not valid[0].any()
    assert torch.equal(valid, (~omitted).any(dim=1)[:, None].expand(200, 3))
    assembler = train_data.CaptionTokens(tokenizer)
    ids, _ = assembler(negative_codes.flatten(0, 1), negative_omitted.flatten(0, 1))
    ids = ids.reshape(200, 3, -1)
    changed_names = []
    for i in valid[:, 0].nonzero().flatten().tolist():
        source = caption(scenes[i], _drops(omitted[i]))
        for k in range(3):
            differs = (negative_codes[i, k] != codes[i]).nonzero().flatten().tolist()
            assert differs == [changed[i, k].item()] and not omitted[i, differs[0]]
            changed_names.append(ATTRIBUTES[differs[0]])
            negative = scene_of(negative_codes[i, k])
            text = caption(negative, _drops(negative_omitted[i, k]))
            assert text != source
            assert ids[i, k].tolist() == tokenizer(text, padding="max_length", max_length=16)["input_ids"]
            # The negative is true of exactly the scenes whose caption with its omissions reads the same.
            expected = [caption(other, _drops(negative_omitted[i, k])) == text for other in scenes]
            true_of = train_data.texts_true_of(negative_codes[i, k][None], negative_omitted[i, k][None], codes)
            assert true_of[0].tolist() == expected
    assert set(changed_names) == set(ATTRIBUTES)


def test_hard_negatives_weight_position_up():
    codes = torch.from_numpy(train_data.value_codes(held_out_scenes(300, seed=6)))
    omitted = torch.zeros_like(codes, dtype=torch.bool)
    weights = torch.ones(len(ATTRIBUTES))
    weights[ATTRIBUTES.index("position")] = 5.0
    _, _, changed, _ = train_data.hard_negatives(codes, omitted, 4, torch.Generator().manual_seed(1), weights)
    share = (changed == ATTRIBUTES.index("position")).float().mean().item()
    assert abs(share - 0.5) < 0.06  # 5 / (5 + 5 others)


def test_hard_negative_targets_hand_checked():
    def codes_of(size, colour, texture, shape, background, position):
        row = dict(zip(ATTRIBUTES, (size, colour, texture, shape, background, position)))
        return [VALUES[name].index(row[name]) for name in ATTRIBUTES]

    codes = torch.tensor([
        codes_of("small", "red", "plain", "circle", "sand", "top left"),
        codes_of("small", "red", "plain", "circle", "sand", "bottom right"),
        codes_of("large", "blue", "striped", "star", "sky", "top"),
        codes_of("medium", "green", "dotted", "heart", "grass", "center"),
    ])
    named_only = {0: set(ATTRIBUTES), 1: {"position"}, 2: {"colour"}, 3: set()}
    omitted = torch.tensor([[name not in named_only[i] for name in ATTRIBUTES] for i in range(4)])
    # One hard negative each: 0 -> "bottom right" (image 1's full caption), 1 -> "an object, top" (true of 2),
    # 2 -> "a red object" (true of 0 and 1); 3 names nothing, so its negative is invalid.
    negative_codes = codes.clone()[:, None, :]
    position, colour = ATTRIBUTES.index("position"), ATTRIBUTES.index("colour")
    negative_codes[0, 0, position] = VALUES["position"].index("bottom right")
    negative_codes[1, 0, position] = VALUES["position"].index("top")
    negative_codes[2, 0, colour] = VALUES["colour"].index("red")
    valid = torch.tensor([[True], [True], [True], [False]])
    targets = clip_train.hard_negative_targets(codes, omitted, negative_codes, omitted[:, None, :], valid)
    expected = torch.tensor([
        # own captions 0-3 ("an object" of 3 is true of all) | negatives of 0, 1, 2, 3
        [1, 0, 0, 1, 0, 0, 1, 0],
        [0, 1, 0, 1, 1, 0, 1, 0],
        [0, 0, 1, 1, 0, 1, 0, 0],
        [0, 0, 0, 1, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(targets, expected)


# ---------------------------------------------------------------- attribute-keeping augmentation


def _pixels(images):
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255.0


def _uint8(pixels):
    return (pixels * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _full(value, n):
    return torch.full((n,), float(value))


AUGMENTATIONS = {
    "brightness+": lambda x: train_data.adjust_brightness(x, _full(1 + train_data.BRIGHTNESS, len(x))),
    "brightness-": lambda x: train_data.adjust_brightness(x, _full(1 - train_data.BRIGHTNESS, len(x))),
    "contrast+": lambda x: train_data.adjust_contrast(x, _full(1 + train_data.CONTRAST, len(x))),
    "contrast-": lambda x: train_data.adjust_contrast(x, _full(1 - train_data.CONTRAST, len(x))),
    "hue+": lambda x: train_data.rotate_hue(x, _full(train_data.HUE_DEGREES, len(x))),
    "hue-": lambda x: train_data.rotate_hue(x, _full(-train_data.HUE_DEGREES, len(x))),
    "translate": lambda x: train_data.translate(x, *torch.tensor([[1, -1, 1, -1], [1, 1, -1, -1]]).repeat(
        1, len(x) // 4 + 1)[:, : len(x)]),
    "blur": lambda x: train_data.gaussian_blur(x, _full(clip_train.MAX_BLUR, len(x))),  # train_clip's maximum
    "noise": lambda x: (x + torch.randn(x.shape, generator=torch.Generator().manual_seed(0),
                                        dtype=x.dtype) * clip_train.MAX_NOISE).clamp(0, 1),
    # As the judge trains: each change on about half of the images, at random strengths, then blur and noise.
    "all at random": lambda x: train_data.degrade(train_data.keep_attributes_augment(
        x, torch.Generator().manual_seed(3)), torch.Generator().manual_seed(4), clip_train.MAX_BLUR,
        clip_train.MAX_NOISE),
}


@pytest.fixture(scope="module")
def augmentation_sample():
    from ipbench.world.shape_cnn import load_shape_cnn

    scenes = held_out_scenes(160, seed=7)
    return scenes, [render(scene) for scene in scenes], load_shape_cnn(CHECKPOINTS / "shape_cnn")


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_augmentations_keep_every_attribute(name, augmentation_sample):
    from ipbench.world.analyze import analyze
    from ipbench.world.shape_cnn import predict

    scenes, images, cnn = augmentation_sample
    changed = _uint8(AUGMENTATIONS[name](_pixels(images)))
    assert np.abs(changed.astype(int) - np.stack(images)).max() > 0  # it did something
    shapes, textures, _ = predict(cnn, changed)
    clean_shapes, clean_textures, _ = predict(cnn, np.stack(images))
    hits = {attribute: [] for attribute in ATTRIBUTES}
    for k, (scene, image) in enumerate(zip(scenes, changed)):
        found = analyze(image)
        for attribute in ("background", "position", "size", "colour"):
            hits[attribute].append(getattr(found, attribute) == getattr(scene, attribute))
        # Shape and texture by the shape CNN, on renders it reads right when clean.
        if clean_shapes[k] == scene.shape:
            hits["shape"].append(shapes[k] == scene.shape)
        if scene.texture is not None and clean_textures[k] == scene.texture:
            hits["texture"].append(textures[k] == scene.texture)
    rates = {attribute: float(np.mean(values)) for attribute, values in hits.items()}
    assert min(rates.values()) >= 0.99, rates


def test_augmentation_primitives():
    images = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    assert torch.allclose(train_data.adjust_brightness(images, _full(1, 4)), images)
    assert torch.allclose(train_data.adjust_contrast(images, _full(1, 4)), images)
    assert torch.allclose(train_data.rotate_hue(images, _full(0, 4)), images)
    assert torch.allclose(train_data.rotate_hue(images, _full(360, 4)), images)
    grey = images.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    assert torch.allclose(train_data.rotate_hue(grey, _full(30, 4)), grey)  # no chroma to turn
    shifted = train_data.translate(images, torch.tensor([1, 0, -1, 0]), torch.tensor([0, 1, 0, 0]))
    assert torch.equal(shifted[0, :, :, 1:], images[0, :, :, :-1]) and torch.equal(shifted[0, :, :, 0], images[0, :, :, 0])
    assert torch.equal(shifted[1, :, 1:], images[1, :, :-1])
    assert torch.equal(shifted[2, :, :, :-1], images[2, :, :, 1:]) and torch.equal(shifted[3], images[3])
    off = train_data.keep_attributes_augment(images, torch.Generator().manual_seed(0), 0, 0, 0, 0)
    assert torch.equal(off, images)


# ---------------------------------------------------------------- text-state displacement


def test_text_state_displacement(world_clip, tmp_path):
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    from ipbench.world.pipeline import encode_text, load_clip_towers

    results = clip_train.text_state_displacement(world_clip, n=12)
    assert set(clip_train.DISPLACED_ATTRIBUTES) <= set(results) and results["n"] == 12
    assert all(results[a] > 0 for a in clip_train.DISPLACED_ATTRIBUTES)
    assert results["position_over_colour"] == pytest.approx(results["position"] / results["colour"])
    # By hand for the top-left / bottom-right swap.
    tokenizer, text_encoder, _, _ = load_clip_towers(world_clip)
    scenes = [s for s in held_out_scenes(40) if s.shape != BLOB][:12]
    with torch.no_grad():
        a, b = (encode_text(tokenizer, text_encoder, [caption(dataclasses.replace(s, position=p)) for s in scenes],
                            "cpu") for p in ("top left", "bottom right"))
    by_hand = torch.linalg.norm((a - b).reshape(12, -1), dim=1).mean().item()
    assert results["position_top_left_bottom_right"] == pytest.approx(by_hand, rel=1e-5)

    # Known answer: with "top", "bottom", "left" and "right" embedded alike, the swap changes nothing.
    copy = tmp_path / "clip"
    copy.mkdir()
    for path in world_clip.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    weights = load_file(copy / "model.safetensors")
    key = "text_model.embeddings.token_embedding.weight"
    ids = [AutoTokenizer.from_pretrained(copy).convert_tokens_to_ids(w + "</w>") for w in ("top", "bottom", "left", "right")]
    weights[key][ids] = weights[key][ids[0]].clone()
    save_file(weights, copy / "model.safetensors", metadata={"format": "pt"})
    blind = clip_train.text_state_displacement(copy, n=12)
    assert blind["position_top_left_bottom_right"] < 1e-4 and blind["colour"] > 0


# ---------------------------------------------------------------- robustness


@pytest.fixture(scope="module")
def world_backbone(world_clip):
    return load_backbone(f"hf-clip:{world_clip}", device="cpu")


@pytest.fixture(scope="module")
def small_sample():
    identity = {"identity": lambda images: images.copy()}
    return robustness.make_sample(24, seed=1, chosen={**identity, **robustness.perturbations()})


def test_perturbations_are_what_they_say():
    images = np.stack([render(scene) for scene in held_out_scenes(3, seed=2)])
    chosen = robustness.perturbations()
    assert set(chosen) == {"brightness+15", "brightness-15", "contrast+20", "contrast-20", "blur", "noise", "hflip"}
    brighter = np.clip(np.round(images * 1.15), 0, 255)
    assert np.abs(chosen["brightness+15"](images).astype(int) - brighter).max() <= 1
    assert np.array_equal(chosen["hflip"](images), images[:, :, ::-1])
    mean = images.reshape(3, -1).mean(axis=1)[:, None, None, None]
    contrast = np.clip(np.round((images - mean) * 0.8 + mean), 0, 255)
    assert np.abs(chosen["contrast-20"](images).astype(int) - contrast).max() <= 1


def test_image_and_caption_consistency_known_answers(world_backbone, small_sample):
    images = robustness.image_consistency(world_backbone, small_sample, n_boot=200)
    assert images["identity"]["mean"] == pytest.approx(1.0) and images["identity"]["n"] == 24
    lo, hi = images["identity"]["ci95"]
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)
    assert "hflip" in images and all(-1 <= v["mean"] <= 1 for v in images.values())
    # By hand for one perturbation.
    clean = world_backbone.encode_images(list(small_sample.images["clean"]))
    blurred = world_backbone.encode_images(list(small_sample.images["blur"]))
    assert images["blur"]["mean"] == pytest.approx(float(np.mean(np.sum(clean * blurred, axis=1))))
    lo, hi = images["blur"]["ci95"]
    assert lo <= images["blur"]["mean"] <= hi

    captions = robustness.caption_consistency(world_backbone, small_sample, n_boot=200)
    assert captions["identity"]["ratio"] == pytest.approx(1.0)
    assert captions["identity"]["ratio_ci95"] == pytest.approx([1.0, 1.0])
    assert "hflip" not in captions  # a mirror image changes the named position
    texts = world_backbone.encode_texts([caption(scene) for scene in small_sample.scenes])
    assert captions["clean"]["mean"] == pytest.approx(float(np.mean(np.sum(clean * texts, axis=1))))


def test_attribute_auc_against_pair_counting(world_backbone, small_sample):
    results = robustness.attribute_auc(world_backbone, small_sample)
    named = [s for s in small_sample.scenes if s.shape != BLOB]
    assert results["n"] == len(named)
    assert results["identity"] == pytest.approx(results["clean"])
    assert "hflip" not in results
    index = [k for k, s in enumerate(small_sample.scenes) if s.shape != BLOB]
    images = world_backbone.encode_images(list(small_sample.images["noise"][index]))
    own = world_backbone.encode_texts([caption(scene) for scene in named])
    positives = np.sum(images * own, axis=1)
    for attribute in ("colour", "position"):
        wrong = [[caption(dataclasses.replace(scene, **{attribute: v})) for v in VALUES[attribute]
                  if v != getattr(scene, attribute)] for scene in named]
        embeddings = world_backbone.encode_texts([text for group in wrong for text in group])
        owner = np.repeat(np.arange(len(named)), [len(group) for group in wrong])
        negatives = np.array([embeddings[k] @ images[owner[k]] for k in range(len(owner))])
        wins = (positives[:, None] > negatives[None]).sum() + 0.5 * (positives[:, None] == negatives[None]).sum()
        assert results["noise"][attribute] == pytest.approx(wins / (len(positives) * len(negatives)), abs=1e-6)
    assert robustness.wrong_attribute_captions(named[0], "shape") == [
        caption(dataclasses.replace(named[0], shape=s)) for s in ALL_SHAPES if s not in (BLOB, named[0].shape)]


def test_subject_auc_against_pair_counting(world_backbone, tmp_path):
    from ipbench.world.render import subject_set

    results = robustness.subject_auc(world_backbone, n_subjects=6, n_refs=3)
    references = [(s.subject_id, s.colour, scene) for s in subject_set(6, 3) for scene in s.references]
    embeddings = world_backbone.encode_images([render(scene) for _, _, scene in references])
    same, hard = [], []
    for i in range(len(references)):
        for j in range(i + 1, len(references)):
            cosine = embeddings[i] @ embeddings[j]
            if references[i][0] == references[j][0]:
                same.append(cosine)
            elif references[i][1] == references[j][1]:
                hard.append(cosine)
    assert results["n_same_pairs"] == len(same) == 6 * 3
    if hard:
        wins = sum((s > h) + 0.5 * (s == h) for s in same for h in hard)
        assert results["auc_same_colour"] == pytest.approx(wins / (len(same) * len(hard)))
    assert 0 <= results["auc"] <= 1

    # Image parts work for DINO too; its report has no caption measures.
    dino = load_backbone(f"hf-dino:{build_tiny_dino(tmp_path / 'dino')}", device="cpu")
    assert 0 <= robustness.subject_auc(dino, n_subjects=4, n_refs=2)["auc"] <= 1
    report = robustness.robustness_report(dino, n=6, n_subjects=3, n_boot=50, analyzer=True)
    assert set(report) == {"backbone", "n", "seed", "image", "subjects", "analyzer"}
    assert report["analyzer"]["clean"]["all"] == 1.0 and "brightness+15" in report["image"]
    json.dumps(report)  # plain numbers


# ---------------------------------------------------------------- training smoke run


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory):
    from diffusers import AutoencoderKL

    folder = tmp_path_factory.mktemp("vae")
    torch.manual_seed(0)
    AutoencoderKL(**tiny_vae_config()).save_pretrained(folder)
    return folder


def test_train_clip_smoke_hard_negatives_augmentation_vae(tmp_path, tiny_vae_dir):
    from safetensors import safe_open
    from transformers import CLIPModel

    data = train_data.render_training_set(24, "train", seed=4)
    metrics = clip_train.train_clip(
        tmp_path / "clip", "conditioning", data, steps=2, batch_size=8, device="cpu", log_every=1,
        hard_negatives=2, hard_negative_position_weight=3.0, position_head_weight=4.0, head_warmup_steps=1,
        brightness=0.08, contrast=0.2, hue_degrees=8.0,
        translate=1, vae_dir=tiny_vae_dir, vae_probability=0.5, val_every=1, val_n=4, progress=False)
    assert metrics["stopped_at_step"] == 2 and metrics["hard_negatives"] == 2 and metrics["vae_probability"] == 0.5
    history = metrics["history"]
    assert [row["step"] for row in history] == [0, 1]
    for row in history:
        assert all(isinstance(v, (int, float)) and np.isfinite(v) for v in row.values()), row
        assert {"loss", "loss_text", "hard_negative_accuracy", "val_zero_shot_position",
                "val_templated_position", "lr"} <= set(row)
    # Step 0 is head warmup: the attribute heads' loss alone, the position head's counted 4 times.
    assert history[0]["loss"] == pytest.approx(0.5 * history[0]["loss_attributes"])
    assert history[1]["loss"] >= history[1]["loss_text"] + 0.5 * history[1]["loss_attributes"] - 1e-5
    assert history[0]["loss_position_head"] > 0
    assert json.loads((tmp_path / "clip" / "training.json").read_text())["stopped_at_step"] == 2
    with safe_open(tmp_path / "clip" / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}
    model = CLIPModel.from_pretrained(tmp_path / "clip", dtype=torch.float32)
    assert next(model.parameters()).dtype == torch.float32
    backbone = load_backbone(f"hf-clip:{tmp_path / 'clip'}", device="cpu")
    assert backbone.encode_images([data["images"][0]]).shape == (1, 128)
    assert np.isfinite(backbone.encode_texts(["a red object, top left"])).all()


def test_train_clip_judge_defaults_and_time_limit(tmp_path):
    data = train_data.render_training_set(32, "train", seed=5)
    metrics = clip_train.train_clip(tmp_path / "judge", "judge", data, steps=50, batch_size=8, device="cpu",
                                    time_limit_s=1e-6, progress=False)
    assert metrics["stopped_at_step"] == 0 and metrics["history"] == []
    assert metrics["brightness"] == train_data.BRIGHTNESS and metrics["hard_negatives"] == clip_train.RECIPES["judge"][
        "hard_negatives"]
    assert (tmp_path / "judge" / "model.safetensors").exists()
