"""The mini DINO on CPU at toy scale: mechanics checked against direct computations, not quality."""
import json
import math

import numpy as np
import pytest
import torch
from safetensors import safe_open

from ipbench.world import dino_train, train_data
from ipbench.world.clip_train import roc_auc
from ipbench.world.render import BACKGROUNDS, IMAGE_SIZE
from metrics.backbones import load_backbone

TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
TINY_SETTINGS = {"architecture": TINY, "n_prototypes": 64, "head_hidden": 32, "head_bottleneck": 16, "n_local": 2}


@pytest.fixture(scope="module")
def training_set():
    return train_data.render_training_set(64, "train", seed=2)


@pytest.fixture(scope="module")
def trained(training_set, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dino")
    record = dino_train.train_dino(folder, training_set, steps=3, batch_size=16, seed=0, device="cpu", log_every=1,
                                   **TINY_SETTINGS)
    return folder, record


def stored_tensors(folder):
    with safe_open(folder / "model.safetensors", "pt") as weights:
        return {name: weights.get_tensor(name) for name in weights.keys()}


# ---------------------------------------------------------------- training and saving


def test_training_smoke_saves_fp16_and_loads_float32(trained, training_set):
    folder, record = trained
    assert record["stopped_at_step"] == 3 and record["steps"] == 3
    assert [row["step"] for row in record["history"]] == [0, 1, 2]
    for row in record["history"]:
        assert all(isinstance(value, (int, float)) and math.isfinite(value) for value in row.values()), row
        assert 0 <= row["teacher_entropy"] <= math.log(64) + 1e-6
    assert record["parameters"] > 0 and record["n_images"] == 64
    assert record["n_twins"] == len(training_set["twin_images"]) > 0
    assert json.loads((folder / "training.json").read_text())["history"] == record["history"]

    tensors = stored_tensors(folder)
    assert {t.dtype for t in tensors.values()} == {torch.float16}
    assert not any(name.startswith("pooler") for name in tensors)  # a bare ViTModel, no pooling layer
    assert sum(t.numel() for t in tensors.values()) == record["parameters"]

    backbone = load_backbone(f"hf-dino:{folder}", device="cpu")
    images = list(training_set["images"][:5])
    embeddings = backbone.encode_images(images)
    assert backbone.kind == "dino" and embeddings.shape == (5, TINY["hidden_size"])
    assert np.isfinite(embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-12)

    # The scorer sees what training saw: the saved processor is the training normalisation, and the
    # embedding is the CLS token of the fp16-stored teacher run on it in float32.
    from transformers import AutoImageProcessor, ViTModel

    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    pixels = processor(images=images, return_tensors="pt")["pixel_values"]
    by_hand = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
               - torch.tensor(dino_train.IMAGE_MEAN).view(1, 3, 1, 1)) / torch.tensor(dino_train.IMAGE_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(pixels, by_hand, atol=1e-5, rtol=0)
    model = ViTModel.from_pretrained(folder, dtype=torch.float32, add_pooling_layer=False).eval()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        cls = model(pixel_values=by_hand).last_hidden_state[:, 0].double().numpy()
    np.testing.assert_allclose(embeddings, cls / np.linalg.norm(cls, axis=1, keepdims=True), atol=1e-5)


def test_same_seed_same_weights(trained, training_set, tmp_path):
    folder, _ = trained
    record = dino_train.train_dino(tmp_path / "again", training_set, steps=3, batch_size=16, seed=0, device="cpu",
                                   log_every=1, **TINY_SETTINGS)
    first, again = stored_tensors(folder), stored_tensors(tmp_path / "again")
    assert first.keys() == again.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert record["history"] == trained[1]["history"]
    dino_train.train_dino(tmp_path / "other", training_set, steps=1, batch_size=16, seed=1, device="cpu",
                          **TINY_SETTINGS)
    other = stored_tensors(tmp_path / "other")
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_exhausted_time_limit_still_saves(training_set, tmp_path):
    record = dino_train.train_dino(tmp_path / "dino", training_set, steps=1000, batch_size=8, device="cpu",
                                   time_limit_s=1e-9, **TINY_SETTINGS)
    assert record["stopped_at_step"] == 0 and record["history"] == []
    assert load_backbone(f"hf-dino:{tmp_path / 'dino'}", device="cpu").encode_images(
        list(training_set["images"][:2])).shape == (2, TINY["hidden_size"])


def test_default_architecture_fits_the_size_budget():
    from transformers import ViTModel

    config = dino_train.vit_config()
    assert (config.image_size, config.patch_size) == (IMAGE_SIZE, 8)
    parameters = sum(p.numel() for p in ViTModel(config, add_pooling_layer=False).parameters())
    assert 2 * parameters <= 5e6  # bytes of the fp16 weights file, headers aside


# ---------------------------------------------------------------- objective


def direct_dino_loss(student, teacher, center, n_views, n_global, student_temp, teacher_temp):
    """DINO's loss with explicit exponentials and loops: nested lists in, a float out."""
    batch = len(teacher) // n_global
    total, terms = 0.0, 0
    for t in range(n_global):
        for s in range(n_views):
            if s == t:
                continue
            for b in range(batch):
                t_row = [(x - c) / teacher_temp for x, c in zip(teacher[t * batch + b], center)]
                t_norm = sum(math.exp(x) for x in t_row)
                target = [math.exp(x) / t_norm for x in t_row]
                s_row = [x / student_temp for x in student[s * batch + b]]
                log_norm = math.log(sum(math.exp(x) for x in s_row))
                total += -sum(p * (x - log_norm) for p, x in zip(target, s_row)) / batch
            terms += 1
    return total / terms


def test_dino_loss_equals_a_direct_computation():
    generator = torch.Generator().manual_seed(0)
    batch, k, n_views, n_global = 3, 5, 4, 2
    student = torch.randn(n_views * batch, k, generator=generator, dtype=torch.float64)
    teacher = torch.randn(n_global * batch, k, generator=generator, dtype=torch.float64)
    center = torch.randn(1, k, generator=generator, dtype=torch.float64) * 0.3
    targets = dino_train.teacher_targets(teacher, center.float(), 0.07)
    ours = dino_train.dino_loss(student, targets, n_views, 0.1).item()
    expected = direct_dino_loss(student.tolist(), teacher.tolist(), center[0].tolist(), n_views, n_global, 0.1, 0.07)
    assert ours == pytest.approx(expected, rel=1e-5)
    # Targets are distributions and carry no gradient back to the teacher.
    teacher.requires_grad_(True)
    assert not dino_train.teacher_targets(teacher, center, 0.07).requires_grad
    torch.testing.assert_close(targets.sum(-1), torch.ones(n_global * batch), atol=1e-6, rtol=0)


def test_dino_loss_with_every_pair_when_the_teacher_saw_other_views():
    generator = torch.Generator().manual_seed(1)
    batch, k, n_views = 2, 4, 3
    student = torch.randn(n_views * batch, k, generator=generator, dtype=torch.float64)
    targets = torch.softmax(torch.randn(2 * batch, k, generator=generator, dtype=torch.float64), dim=-1)
    log_p = torch.log_softmax(student / 0.1, dim=-1).reshape(n_views, batch, k)
    expected = -sum((targets.reshape(2, batch, k)[t] * log_p[s]).sum(-1).mean()
                    for t in range(2) for s in range(n_views)) / (2 * n_views)
    ours = dino_train.dino_loss(student, targets, n_views, 0.1, skip_same=False)
    assert ours.item() == pytest.approx(expected.item(), rel=1e-6)


def test_sinkhorn_targets_balance_the_prototypes():
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 4, generator=generator) * 0.3
    targets = dino_train.sinkhorn_targets(logits, 0.1, iterations=200)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(6), atol=1e-5, rtol=0)  # each image a distribution
    torch.testing.assert_close(targets.sum(dim=0), torch.full((4,), 6 / 4), atol=1e-4, rtol=0)  # prototypes equal
    # Direct: alternate column and row normalisation of exp(logits / T) in float64.
    q = np.exp(logits.double().numpy() / 0.1)
    for _ in range(3):
        q = q / q.sum(axis=0, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(dino_train.sinkhorn_targets(logits, 0.1, iterations=3).numpy(), q, atol=1e-5)


def test_koleo_loss_equals_a_direct_computation():
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(5, 3, generator=generator)
    rows = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in features.tolist()]
    nearest = [min(math.dist(a, b) for j, b in enumerate(rows) if j != i) for i, a in enumerate(rows)]
    expected = -sum(math.log(d) for d in nearest) / len(rows)
    assert dino_train.koleo_loss(features).item() == pytest.approx(expected, rel=1e-5)


def test_entropy_known_values():
    uniform = torch.full((1, 8), 1 / 8)
    one_hot = torch.eye(4)[:1]
    assert dino_train.entropy(uniform).item() == pytest.approx(math.log(8))
    assert dino_train.entropy(one_hot).item() == pytest.approx(0.0, abs=1e-12)


# ---------------------------------------------------------------- views


def test_object_alpha_is_the_object(training_set):
    images = torch.from_numpy(training_set["images"][:16]).permute(0, 3, 1, 2).float() / 255
    palette, _ = dino_train._background_palette("cpu")
    alpha = dino_train.object_alpha(images, palette)[:, 0].numpy()
    # Independently: a pixel is background when it equals one of the background colours exactly.
    colours = np.array([c for group in BACKGROUNDS.values() for c in group])
    raw = training_set["images"][:16].astype(int)
    is_background = (np.abs(raw[:, :, :, None, :] - colours[None, None, None]).max(-1) == 0).any(-1)
    assert (alpha[is_background] == 0).all()
    interior = ~is_background
    assert (alpha[interior] > 0).mean() > 0.99  # antialiased edges partly, the rest fully
    assert (alpha[interior] == 1).mean() > 0.8


def test_global_views_keep_the_whole_object_at_the_drawn_size(training_set):
    images = torch.from_numpy(training_set["images"][:32]).permute(0, 3, 1, 2).float() / 255
    palette, pairs = dino_train._background_palette("cpu")
    alpha = dino_train.object_alpha(images, palette)
    generator = torch.Generator().manual_seed(0)
    views = dino_train.repose(images, alpha, IMAGE_SIZE, dino_train.GLOBAL_RADIUS, pairs, generator)
    assert views.shape == images.shape and views.min() >= 0 and views.max() <= 1
    after = dino_train.object_alpha(views, palette)[:, 0]
    border = torch.cat([after[:, 0], after[:, -1], after[:, :, 0], after[:, :, -1]], dim=1)
    assert border.max() < 0.5  # nothing of the object is cut off
    ys, xs = torch.meshgrid(torch.arange(64) + 0.5, torch.arange(64) + 0.5, indexing="ij")
    for mask, view_alpha in zip(alpha[:, 0], after):
        cy, cx = (view_alpha * ys).sum() / view_alpha.sum(), (view_alpha * xs).sum() / view_alpha.sum()
        radius = (((ys - cy) ** 2 + (xs - cx) ** 2).sqrt() * (view_alpha > 0.5)).max()
        low, high = dino_train.GLOBAL_RADIUS
        assert low - 1.5 <= radius <= high + 1.5
    # The object keeps its colours: its brightest-alpha pixels' mean colour moves little.
    for source, view, a, b in zip(images, views, alpha[:, 0], after):
        before_mean = source[:, a == 1].mean(dim=1)
        after_mean = view[:, b == 1].mean(dim=1)
        assert (before_mean - after_mean).abs().max() < 0.12


def test_canonical_view_centres_the_object_at_the_largest_size(training_set):
    images = torch.from_numpy(training_set["images"][:8]).permute(0, 3, 1, 2).float() / 255
    palette, _ = dino_train._background_palette("cpu")
    views = dino_train.canonical_view(images, dino_train.object_alpha(images, palette))
    centre, radius = dino_train.object_geometry(dino_train.object_alpha(views, palette))
    torch.testing.assert_close(centre, torch.full((8, 2), 32.0), atol=0.75, rtol=0)
    torch.testing.assert_close(radius, torch.full((8,), dino_train.CANONICAL_RADIUS + 0.5), atol=1.5, rtol=0)
    white = torch.tensor(BACKGROUNDS["white"][0]) / 255
    torch.testing.assert_close(views[:, :, 0, 0], white.expand(8, 3), atol=1e-6, rtol=0)


def test_views_shapes_and_determinism(training_set):
    first = torch.from_numpy(training_set["images"][:4])
    second = torch.from_numpy(training_set["images"][4:8])

    def views(seed, **options):
        return dino_train.make_views(first, second, torch.Generator().manual_seed(seed), n_local=3, p_original=0.5,
                                     **options)

    global_views, local_views, canonical_views = views(0)
    assert global_views.shape == (8, 3, 64, 64) and local_views.shape == (12, 3, 32, 32)
    assert canonical_views is None
    assert all(torch.equal(x, y) for x, y in zip(views(0)[:2], (global_views, local_views)))
    assert not torch.equal(global_views, views(1)[0])
    _, _, canonical_views = views(0, canonical=True)
    assert canonical_views.shape == (8, 3, 64, 64)
    # Canonical views are deterministic: first's, then second's.
    palette, _ = dino_train._background_palette("cpu")
    sources = torch.cat([first, second]).permute(0, 3, 1, 2).float() / 255
    expected = dino_train.canonical_view(sources, dino_train.object_alpha(sources, palette))
    torch.testing.assert_close(canonical_views, expected)
    assert dino_train.make_views(first, second, torch.Generator(), n_local=0, p_original=0.5)[1] is None


def test_originals_are_the_renders_up_to_photometric_changes(training_set):
    first = torch.from_numpy(training_set["images"][:4])
    second = torch.from_numpy(training_set["images"][4:8])
    global_views, _, _ = dino_train.make_views(first, second, torch.Generator().manual_seed(0), n_local=0,
                                               p_original=1.0)
    sources = torch.cat([first, second]).permute(0, 3, 1, 2).float() / 255
    # Blur (sigma <= 1 px), noise (<= 12/255) and a gain within 5% move pixels a little, on average.
    assert (global_views - sources).abs().mean() < 0.05


# ---------------------------------------------------------------- evaluation


def brute_force_auc(embeddings, ids, colours, same_colour_only):
    """Pairwise AUC by counting: every (same-subject pair, different-subject pair) comparison, ties half."""
    n = len(embeddings)
    positives, negatives = [], []
    for i in range(n):
        for j in range(i + 1, n):
            cosine = float(np.dot(embeddings[i], embeddings[j]))
            if ids[i] == ids[j]:
                positives.append(cosine)
            elif not same_colour_only or colours[i] == colours[j]:
                negatives.append(cosine)
    wins = sum((p > q) + 0.5 * (p == q) for p in positives for q in negatives)
    return wins / (len(positives) * len(negatives))


def test_subject_separation_known_answers():
    ids = ["a", "a", "b", "b", "c", "c"]
    colours = ["red", "red", "red", "red", "blue", "blue"]
    # One axis per subject: same-subject cosines 1, others 0, so both AUCs are exactly 1.
    perfect = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    result = dino_train.subject_separation(perfect, ids, colours)
    assert result == {"auc": 1.0, "auc_same_colour": 1.0, "same": 1.0, "different": 0.0}
    # Everything identical: every comparison a tie.
    assert dino_train.subject_separation(np.ones((6, 2)) / math.sqrt(2), ids, colours)["auc"] == 0.5
    # Random embeddings against counting every comparison; and against roc_auc.
    rng = np.random.default_rng(0)
    ids = list("aabbbccdde")
    colours = ["red", "red", "red", "red", "red", "blue", "blue", "blue", "blue", "red"]
    embeddings = rng.normal(size=(10, 4))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    result = dino_train.subject_separation(embeddings, ids, colours)
    assert result["auc"] == pytest.approx(brute_force_auc(embeddings, ids, colours, False))
    assert result["auc_same_colour"] == pytest.approx(brute_force_auc(embeddings, ids, colours, True))
    assert roc_auc([1.0, 2.0], [0.0, 2.0]) == 0.625  # (1 + 0 + 1 + 0.5) / 4: 1>0, 1<2, 2>0, 2=2


def test_evaluate_dino_on_the_tiny_model(trained):
    folder, _ = trained
    result = dino_train.evaluate_dino(folder, device="cpu", n_subjects=8, n_test=200)
    for key in ("dino_auc", "dino_auc_same_colour", "dino_twin_auc"):
        assert 0.0 <= result[key] <= 1.0, key
    assert -1.0 <= result["dino_different"] <= 1.0 and -1.0 <= result["dino_same"] <= 1.0
    assert result["n_subjects"] == 8 and result["n_test_blobs"] >= 2
