"""Mini-world model code on CPU at toy scale: tokenizer, training data, CLIP and shape-CNN training.

Quality needs GPU-scale training; here every check is of mechanics against an
independent computation (string splitting, scipy, brute-force pair counts,
the renderer's own captions, the analyzer).
"""
import json
import re

import numpy as np
import pytest
import torch

from ipbench.world import clip_train, shape_cnn, train_data
from ipbench.world.analyze import analyze, shape_iou
from ipbench.world.render import ATTRIBUTES, BLOB, caption, random_caption, sample_scene, scene_rng
from ipbench.world.tokenizer import MAX_LENGTH, build_tokenizer, unknown_words, world_captions
from metrics.backbones import load_backbone

N_TRAIN = 256


@pytest.fixture(scope="module")
def training_set():
    return train_data.render_training_set(N_TRAIN, "train", seed=3, workers=1)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def clip_dirs(tmp_path_factory, training_set):
    folders, metrics = {}, {}
    for preset in clip_train.PRESETS:
        folders[preset] = tmp_path_factory.mktemp(preset)
        metrics[preset] = clip_train.train_clip(folders[preset], preset, training_set, steps=6, batch_size=32,
                                                device="cpu", log_every=1)
    return folders, metrics


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory, training_set):
    folder = tmp_path_factory.mktemp("shape_cnn")
    metrics = shape_cnn.train_shape_cnn(folder, training_set, steps=6, batch_size=32, device="cpu",
                                        log_every=1)
    return folder, metrics


def plain_words(text):
    """Words of a caption by plain string splitting (commas and hyphens are words of their own)."""
    return re.sub(r"([,-])", r" \1 ", text).split()


# ---------------------------------------------------------------- tokenizer


def test_every_caption_word_is_one_token(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert tokenizer.model_max_length == MAX_LENGTH
    rng = np.random.default_rng(0)
    scenes = [sample_scene(scene_rng("val", 0, i), "val") for i in range(200)]
    random_captions = [random_caption(scene, rng, 0.3) for scene in scenes]
    for text in world_captions() + random_captions:
        tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
        assert tokens[0] == tokenizer.bos_token and tokens[-1] == tokenizer.eos_token
        assert tokens[1:-1] == [word + "</w>" for word in plain_words(text)], text
        assert unknown_words(tokenizer, text) == []
    longest = "a large orange checkered crescent on a checker-grey background, bottom right"
    assert len(tokenizer(longest)["input_ids"]) == 16


def test_unknown_words_fall_back_to_characters(tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    vocab = json.loads((tokenizer_dir / "vocab.json").read_text())
    text = "a Zebra on a sand background, 42"
    # Single characters ("4", "2") are whole tokens too.
    assert unknown_words(tokenizer, text) == ["zebra"]
    assert unknown_words(vocab, text) == ["zebra"]
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    assert tokens[2:7] == ["z", "e", "b", "r", "a</w>"]
    assert tokenizer.unk_token_id not in tokenizer("zebra")["input_ids"][1:-1]


# ---------------------------------------------------------------- training data


def test_training_set_is_deterministic_and_has_blob_twins(training_set):
    scenes, images = training_set["scenes"], training_set["images"]
    assert images.shape == (N_TRAIN, 64, 64, 3) and images.dtype == np.uint8
    blobs = [k for k, scene in enumerate(scenes) if scene.shape == BLOB]
    assert 0.12 < len(blobs) / N_TRAIN < 0.35  # sample_scene alone gives 1/9
    assert training_set["twin_source"].tolist() == blobs
    assert all(0 <= scene.blob_seed < 10**9 for scene in scenes if scene.shape == BLOB)  # train range

    parallel = train_data.render_training_set(40, "train", seed=3, workers=2)
    assert np.array_equal(parallel["images"], images[:40])
    assert parallel["scenes"] == scenes[:40]
    n_twins = len(parallel["twin_images"])
    assert np.array_equal(parallel["twin_images"], training_set["twin_images"][:n_twins])

    # A twin is the same blob elsewhere: same colour, same outline, unlike another blob's.
    first, second = training_set["twin_source"][:2]
    twin = training_set["twin_images"][0]
    assert analyze(twin).colour == scenes[first].colour
    assert analyze(twin).background != scenes[first].background
    assert analyze(twin).position != scenes[first].position
    assert shape_iou(images[first], twin) > 0.9
    assert shape_iou(images[second], twin) < shape_iou(images[first], twin)


def test_npz_round_trip(tmp_path, training_set):
    small = {"images": training_set["images"][:30], "scenes": training_set["scenes"][:30],
             "twin_images": training_set["twin_images"][:3], "twin_source": training_set["twin_source"][:3]}
    train_data.save_npz(tmp_path / "set.npz", small)
    loaded = train_data.load_npz(tmp_path / "set.npz", workers=1)
    assert loaded["scenes"] == small["scenes"]
    for key in ("images", "twin_images", "twin_source"):
        assert np.array_equal(loaded[key], small[key])


def test_training_captions_and_which_captions_are_true(training_set):
    scenes = training_set["scenes"][:80]
    texts, omitted = train_data.training_captions(scenes, np.random.default_rng(1))
    assert omitted.shape == (80, len(ATTRIBUTES)) and 0 < omitted.mean() < 0.6
    for scene, text, row in zip(scenes, texts, omitted):
        named = dict(zip(ATTRIBUTES, ~row))
        words = plain_words(text)
        assert (scene.colour in words) == named["colour"] and (scene.size in words) == named["size"]
        assert (scene.shape in words) == named["shape"] and ("object" in words) == (not named["shape"])
        assert text.endswith(f", {scene.position}") == named["position"]
        assert (f"on a {scene.background} background" in text) == named["background"]
        assert named["texture"] == (scene.texture is not None and scene.texture in words)
    # Reference: caption i is true of scene j when captioning j with i's omissions gives the same text.
    drop_sets = [{a for a, dropped in zip(ATTRIBUTES, row) if dropped} for row in omitted]
    expected = np.array([[caption(other, drops) == text for other in scenes]
                         for text, drops in zip(texts, drop_sets)])
    codes = train_data.attribute_codes(scenes)
    assert np.array_equal(train_data.caption_true_of(codes, omitted), expected)
    on_torch = train_data.caption_true_of(torch.from_numpy(codes), torch.from_numpy(omitted))
    assert np.array_equal(on_torch.numpy(), expected)
    assert expected.sum() > len(scenes)  # some partial captions fit several images


def test_gaussian_blur_matches_scipy():
    from scipy.ndimage import gaussian_filter

    images = torch.rand(3, 3, 12, 10, dtype=torch.float64)
    sigma = torch.tensor([0.0, 0.7, 1.0], dtype=torch.float64)
    blurred = train_data.gaussian_blur(images, sigma).numpy()
    assert np.allclose(blurred[0], images[0].numpy())
    for k in (1, 2):
        s = sigma[k].item()
        reference = gaussian_filter(images[k].numpy(), sigma=(0, s, s), mode="nearest", radius=(0, 3, 3))
        assert np.allclose(blurred[k], reference, atol=1e-10)


# ---------------------------------------------------------------- CLIP


def test_multi_positive_nce_reduces_to_cross_entropy():
    logits = torch.randn(5, 5, dtype=torch.float64)
    identity = torch.eye(5, dtype=torch.bool)
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(5))
    assert torch.allclose(clip_train._multi_positive_nce(logits, identity), expected.float())
    two = identity.clone()
    two[0, 3] = True
    by_hand = -(0.5 * torch.log_softmax(logits[0], 0)[[0, 3]].sum() + sum(
        torch.log_softmax(logits[i], 0)[i] for i in range(1, 5))) / 5
    assert torch.allclose(clip_train._multi_positive_nce(logits, two), by_hand.float())


def test_clip_training_saves_a_loadable_backbone(clip_dirs, training_set):
    from transformers import AutoProcessor, CLIPImageProcessor, CLIPModel

    folders, metrics = clip_dirs
    configs = {}
    for preset, folder in folders.items():
        assert all(np.isfinite(record["loss"]) for record in metrics[preset]["history"])
        assert metrics[preset]["steps"] == 6
        assert metrics[preset]["n_twins"] == len(training_set["twin_images"])
        assert (folder / "model.safetensors").stat().st_size < 20e6
        model = CLIPModel.from_pretrained(folder, dtype=torch.float32).eval()  # stored as float16
        configs[preset] = model.config
        assert isinstance(AutoProcessor.from_pretrained(folder).image_processor, CLIPImageProcessor)
        backbone = load_backbone(f"hf-clip:{folder}", device="cpu")
        images = list(training_set["images"][:3])
        embeddings = backbone.encode_images(images)
        assert embeddings.shape == (3, model.config.projection_dim)
        # The processor's pixels are the training pipeline's (un-augmented) pixels.
        processor = CLIPImageProcessor.from_pretrained(folder)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (processor.image_mean, processor.image_std))
        uint8 = torch.from_numpy(training_set["images"][:3])
        trained_pixels = clip_train._pixels(uint8, mean, std, None, False)
        with torch.no_grad():
            direct = model.get_image_features(pixel_values=trained_pixels).pooler_output.double().numpy()
        assert np.allclose(embeddings, direct / np.linalg.norm(direct, axis=1, keepdims=True), atol=1e-5)
        texts = backbone.encode_texts(["a red object", "a small blue striped star on a sky background, top"])
        assert texts.shape == (2, model.config.projection_dim)
    conditioning, judge = configs["conditioning"], configs["judge"]
    assert conditioning.text_config.hidden_size == 128 and conditioning.vision_config.patch_size == 8
    assert conditioning.text_config.max_position_embeddings == MAX_LENGTH
    assert (judge.vision_config.patch_size, judge.projection_dim) != (8, 128)


def test_roc_auc_against_pair_counting():
    rng = np.random.default_rng(2)
    positives, negatives = rng.normal(1, 1, 17).round(1), rng.normal(0, 1, 23).round(1)  # rounding makes ties
    above = (positives[:, None] > negatives[None, :]).sum()
    wins = above + 0.5 * (positives[:, None] == negatives[None, :]).sum()
    assert clip_train.roc_auc(positives, negatives) == pytest.approx(wins / (17 * 23))


def test_evaluate_clip_keys(clip_dirs):
    folders, _ = clip_dirs
    results = clip_train.evaluate_clip(folders["judge"], device="cpu", n=12, n_subjects=3)
    for attribute in ("colour", "shape", "background", "size", "position", "texture"):
        assert 0 <= results[f"zero_shot_{attribute}"] <= 1 and 0 <= results[f"templated_{attribute}"] <= 1
    assert 0 <= results["clip_i_auc"] <= 1 and -1 <= results["clip_i_same"] <= 1
    assert {"clip_i_auc_same_colour", "clip_i_different", "n_test", "n_subjects"} <= set(results)
    assert clip_train.zero_shot_prompts("colour")[0] == "a red object"
    assert clip_train.zero_shot_prompts("shape")[3] == "a star"


# ---------------------------------------------------------------- shape CNN


def test_shape_cnn_trains_saves_and_predicts(cnn_dir, training_set, tmp_path):
    folder, metrics = cnn_dir
    assert all(np.isfinite(record["loss"]) for record in metrics["history"])
    assert 100_000 <= metrics["parameters"] <= 300_000
    model = shape_cnn.load_shape_cnn(folder)
    images = training_set["images"][:7]
    shapes, textures, confidences = shape_cnn.predict(model, images)
    assert len(shapes) == len(textures) == 7 and confidences.shape == (7, 2)
    assert all((texture is None) == (shape == BLOB) for shape, texture in zip(shapes, textures))
    again = shape_cnn.predict(model, images, batch_size=3)
    assert again[0] == shapes and np.allclose(again[2], confidences, atol=1e-5, equal_nan=True)

    results = shape_cnn.evaluate_shape_cnn(folder, n=10)
    assert {f"{a}_{c}" for a in ("shape", "texture") for c in ("none", "blur", "noise")} <= set(results)

    config = json.loads((folder / "config.json").read_text())
    config["shapes"] = config["shapes"][:-1]
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="shapes"):
        shape_cnn.load_shape_cnn(tmp_path)
