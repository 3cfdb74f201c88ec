"""CLIP / DINO backbones and scores on tiny random models, against direct computations."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from metrics import clip_scores
from metrics.backbones import load_backbone
from tests.tiny_models import (
    TINY_IMAGE_SIZE,
    TINY_OPEN_CLIP_CONFIG,
    build_tiny_clip,
    build_tiny_dino,
    build_tiny_open_clip,
    tiny_images,
)

OPENAI_MEAN, OPENAI_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SHORT_TEXTS = ["a cat", "red", "zzz", "a dog", "12345"]  # under the tiny model's 16 positions
LONG_TEXT = "a photo of a sks backpack on a mountain"


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def clip_backbone(clip_dir):
    return load_backbone(f"hf-clip:{clip_dir}", device="cpu")


def manual_pixels(image, mean, std, size=None):
    """Original CLIP/DINO preprocessing by hand: PIL bicubic resize, centre crop, scale, normalise."""
    pil = Image.fromarray(image)
    if size is None:  # shortest edge to TINY_IMAGE_SIZE, then centre crop
        scale = TINY_IMAGE_SIZE / min(pil.size)
        pil = pil.resize((int(pil.width * scale), int(pil.height * scale)), Image.BICUBIC)
        left, top = (pil.width - TINY_IMAGE_SIZE) // 2, (pil.height - TINY_IMAGE_SIZE) // 2
        pil = pil.crop((left, top, left + TINY_IMAGE_SIZE, top + TINY_IMAGE_SIZE))
    else:
        pil = pil.resize(size, Image.BICUBIC)
    array = (np.asarray(pil, dtype=np.float32) / 255 - np.float32(mean)) / np.float32(std)
    return torch.from_numpy(array.transpose(2, 0, 1).copy())[None]


def unit_rows(tensor):
    array = tensor.detach().double().numpy()
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_hf_clip_embeddings_equal_direct_model_calls(clip_dir, clip_backbone):
    from transformers import AutoTokenizer, CLIPModel

    model, tokenizer = CLIPModel.from_pretrained(clip_dir).eval(), AutoTokenizer.from_pretrained(clip_dir)
    images = tiny_images(3, 40, 48, seed=1) + tiny_images(2, 56, 36, seed=2)  # mixed sizes in one batch
    texts = SHORT_TEXTS + [LONG_TEXT]
    with torch.no_grad():
        pixels = [manual_pixels(im, OPENAI_MEAN, OPENAI_STD) for im in images]
        expected_images = [unit_rows(model.get_image_features(pixel_values=p).pooler_output) for p in pixels]
        # Long texts are cut to the 16 positions, keeping the end token.
        tokens = [tokenizer(t, truncation=True, max_length=16, return_tensors="pt") for t in texts]
        assert tokens[-1]["input_ids"][0, -1] == tokenizer.eos_token_id
        expected_texts = [unit_rows(model.get_text_features(**tok).pooler_output) for tok in tokens]

    image_emb = clip_backbone.encode_images(images, batch_size=2)
    text_emb = clip_backbone.encode_texts(texts)
    assert clip_backbone.name == f"hf-clip:{clip_dir}" and clip_backbone.kind == "clip"
    assert image_emb.dtype == np.float64 and image_emb.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(image_emb, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(image_emb, np.concatenate(expected_images), atol=1e-5)
    np.testing.assert_allclose(text_emb, np.concatenate(expected_texts), atol=1e-5)
    # clip_i is the plain cosine of those embeddings
    first, second = np.concatenate(expected_images[:2]), np.concatenate(expected_images[3:])
    clip_i = clip_scores.clip_i(image_emb[:2], image_emb[3:])
    np.testing.assert_allclose(clip_i, (first * second).sum(1), atol=1e-5)


class FeaturesAsTensors(torch.nn.Module):
    """torchmetrics 1.9 expects transformers 4, where get_*_features returned tensors."""

    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def get_image_features(self, *args, **kwargs):
        return self.model.get_image_features(*args, **kwargs).pooler_output

    def get_text_features(self, *args, **kwargs):
        return self.model.get_text_features(*args, **kwargs).pooler_output


def test_clip_t_x100_equals_torchmetrics_clip_score(clip_dir, clip_backbone):
    from torchmetrics.functional.multimodal import clip_score
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, CLIPProcessor

    model = FeaturesAsTensors(CLIPModel.from_pretrained(clip_dir).eval())
    processor = CLIPProcessor(
        image_processor=AutoImageProcessor.from_pretrained(clip_dir, backend="pil"),
        tokenizer=AutoTokenizer.from_pretrained(clip_dir),
    )
    images = tiny_images(4, seed=3)
    pairs = [(image, text) for image in images for text in SHORT_TEXTS]
    image_emb = clip_backbone.encode_images([im for im, _ in pairs])
    text_emb = clip_backbone.encode_texts([t for _, t in pairs])
    ours = clip_scores.clip_t(image_emb, text_emb, convention="x100")
    # One pair per call: torchmetrics clamps the batch mean, not each pair.
    def loader():  # torchmetrics accepts a callable in place of a model name
        return model, processor

    theirs = [
        clip_score(torch.from_numpy(im).permute(2, 0, 1), text, model_name_or_path=loader).item()
        for im, text in pairs
    ]
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # torchmetrics: float32 on the 0-100 scale
    raw = clip_scores.clip_t(image_emb, text_emb)
    assert (raw > 0.01).any() and (raw < -0.01).any()  # both sides of the clamp are exercised


def test_hf_dino_uses_the_cls_token(tmp_path):
    from transformers import ViTModel

    folder = build_tiny_dino(tmp_path / "dino")
    backbone = load_backbone(f"hf-dino:{folder}", device="cpu")
    images = tiny_images(3, 40, 48, seed=4)
    model = ViTModel.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = [
            unit_rows(model(pixel_values=manual_pixels(im, IMAGENET_MEAN, IMAGENET_STD, size=(32, 32)))
                      .last_hidden_state[:, 0])
            for im in images
        ]
    assert backbone.kind == "dino"
    np.testing.assert_allclose(backbone.encode_images(images), np.concatenate(expected), atol=1e-5)
    with pytest.raises(ValueError, match="no text encoder"):
        backbone.encode_texts(["a cat"])


def test_open_clip_local_dir_and_named_config_with_weights_file(tmp_path):
    import open_clip

    folder = build_tiny_open_clip(tmp_path / "oc")
    images, texts = tiny_images(3, 40, 48, seed=5), SHORT_TEXTS[:3]
    model = open_clip.CLIP(**TINY_OPEN_CLIP_CONFIG)
    model.load_state_dict(torch.load(folder / "open_clip_pytorch_model.bin", weights_only=True), strict=True)
    model.eval()
    with torch.no_grad():
        pixels = torch.cat([manual_pixels(im, OPENAI_MEAN, OPENAI_STD) for im in images])
        expected_images = unit_rows(model.encode_image(pixels))
        expected_texts = unit_rows(model.encode_text(open_clip.tokenize(texts)))

    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "ipbench-tiny-test.json").write_text(json.dumps(TINY_OPEN_CLIP_CONFIG))
    open_clip.add_model_config(config_dir / "ipbench-tiny-test.json")
    weights = folder / "open_clip_pytorch_model.bin"
    specs = [f"open_clip:local-dir:{folder}", f"open_clip:ipbench-tiny-test/{weights}"]
    for spec in specs:
        backbone = load_backbone(spec, device="cpu")
        assert backbone.name == spec
        np.testing.assert_allclose(backbone.encode_images(images), expected_images, atol=1e-5)
        np.testing.assert_allclose(backbone.encode_texts(texts), expected_texts, atol=1e-5)


def test_bad_backbone_specs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown backbone spec 'clip:x'.*hf-clip:.*open_clip:.*hf-dino:"):
        load_backbone("clip:x")
    missing = tmp_path / "no_such_model"
    for spec in (f"hf-clip:{missing}", f"hf-dino:{missing}", f"open_clip:local-dir:{missing}",
                 f"open_clip:ViT-B-32/{missing}.pt"):
        with pytest.raises(FileNotFoundError, match=str(missing)):
            load_backbone(spec, device="cpu")
    with pytest.raises(ValueError, match="pretrained tag or weights path"):
        load_backbone("open_clip:ViT-B-32", device="cpu")


def test_conventions():
    cos = np.array([-0.5, 0.0, 0.3, 1.0])
    np.testing.assert_allclose(clip_scores.apply_convention(cos, "cosine"), cos)
    np.testing.assert_allclose(clip_scores.apply_convention(cos, "x100"), [0, 0, 30, 100])
    np.testing.assert_allclose(clip_scores.apply_convention(cos, "clipscore"), [0, 0, 0.75, 2.5])
    with pytest.raises(ValueError, match="'percent'"):
        clip_scores.apply_convention(cos, "percent")
    assert set(clip_scores.CONVENTIONS) == {"cosine", "x100", "clipscore"}


def loop_cosine(u, v):
    return sum(x * y for x, y in zip(u, v)) / (sum(x * x for x in u) ** 0.5 * sum(y * y for y in v) ** 0.5)


def test_scores_against_loops():
    rng = np.random.default_rng(0)
    a, b, c, d = (rng.normal(size=(4, 6)) * rng.uniform(0.5, 3, (4, 1)) for _ in range(4))  # not unit norm
    pair_cos = [loop_cosine(u, v) for u, v in zip(a, b)]
    np.testing.assert_allclose(clip_scores.clip_i(a, b), pair_cos, atol=1e-12)
    clipscore = clip_scores.clip_t(a, b, "clipscore")
    np.testing.assert_allclose(clipscore, [2.5 * max(x, 0) for x in pair_cos], atol=1e-12)
    refs = rng.normal(size=(3, 6))
    expected_mean = [np.mean([loop_cosine(g, r) for r in refs]) for g in a]
    np.testing.assert_allclose(clip_scores.mean_pairwise(a, refs), expected_mean, atol=1e-12)

    def unit(v):
        return v / np.sqrt((v * v).sum())

    expected = [loop_cosine(unit(ti) - unit(si), unit(tt) - unit(st)) for si, ti, st, tt in zip(a, b, c, d)]
    np.testing.assert_allclose(clip_scores.directional_clip(a, b, c, d), expected, atol=1e-12)
    assert clip_scores.directional_clip(a, a, c, d).tolist() == [0.0] * 4  # unchanged image: no direction
    with pytest.raises(ValueError, match="equal shapes"):
        clip_scores.clip_i(a, b[:3])
    with pytest.raises(ValueError, match="four equal-shape"):
        clip_scores.directional_clip(a, b[:1], c, d)
