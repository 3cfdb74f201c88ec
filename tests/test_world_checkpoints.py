"""The shipped mini-world models: intact, loadable by the Hub code path, and accurate on fresh renders."""
import json
from pathlib import Path

import numpy as np
import pytest

from ipbench.world.render import COLOURS, render, sample_scene, scene_rng
from metrics.backbones import load_backbone
from metrics.weights import sha256_file

CHECKPOINTS = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


SHIPPED = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "manifest.json").is_file())


def test_every_world_artifact_ships():
    from ipbench.training.registry import available_artifacts

    world = {name for name, artifact in available_artifacts().items() if artifact.kind == "world"}
    assert world <= set(SHIPPED)


@pytest.mark.parametrize("model", SHIPPED)
def test_manifest_matches_files(model):
    manifest = json.loads((CHECKPOINTS / model / "manifest.json").read_text())
    assert manifest["files"], model
    for name, digest in manifest["files"].items():
        assert sha256_file(CHECKPOINTS / model / name) == digest, name
    # Models trained before the artifact stage name the rule of that time.
    assert manifest["rule"] in ("train_artifact", "train_world_model") and manifest["device"]["gpus"]
    assert manifest["git"]["commit"] and manifest["validation"]


@pytest.mark.parametrize("model", [m for m in SHIPPED
                                   if json.loads((CHECKPOINTS / m / "manifest.json").read_text())["rule"]
                                   == "train_artifact"])
def test_artifact_stage_manifests_point_to_their_curves(model):
    manifest = json.loads((CHECKPOINTS / model / "manifest.json").read_text())
    assert manifest["curves"] in manifest["files"] and manifest["settings"]["seed"] == manifest["seed"]


def _fresh_scenes(n, seed=123):
    # A seed the validation table does not use: a fresh sample.
    return [sample_scene(scene_rng("test", seed, i), "test") for i in range(n)]


@pytest.mark.parametrize("model", ["judge_clip", "cond_clip"])
def test_mini_clips_load_through_the_hub_code_path(model):
    backbone = load_backbone(f"hf-clip:{CHECKPOINTS / model}")
    scenes = _fresh_scenes(40)
    images = backbone.encode_images([render(scene) for scene in scenes])
    assert images.shape[0] == 40 and np.allclose(np.linalg.norm(images, axis=1), 1.0)
    names = list(COLOURS)
    texts = backbone.encode_texts([f"a {name} object" for name in names])
    predicted = [names[i] for i in (images @ texts.T).argmax(axis=1)]
    accuracy = np.mean([p == scene.colour for p, scene in zip(predicted, scenes)])
    assert accuracy >= 0.9


def test_shape_cnn_reads_fresh_renders():
    from ipbench.world.shape_cnn import load_shape_cnn, predict

    model = load_shape_cnn(CHECKPOINTS / "shape_cnn", "cpu")
    scenes = _fresh_scenes(200)
    shapes, textures, _ = predict(model, np.stack([render(scene) for scene in scenes]))
    assert np.mean([s == scene.shape for s, scene in zip(shapes, scenes)]) >= 0.98
    textured = [(t, scene.texture) for t, scene in zip(textures, scenes) if scene.texture is not None]
    assert np.mean([t == truth for t, truth in textured]) >= 0.97
