"""The text2image task, its mini-world data and the sd_text method (on a tiny random pipeline).

Random weights: the images mean nothing; only format, seeding, batch invariance,
provenance and the tokenizer warnings are checked.
"""
from __future__ import annotations

import hashlib
import logging
import subprocess
import sys

import numpy as np
import pytest

from ipbench import datasets
from ipbench.imageset import Request
from ipbench.io import read_jsonl
from ipbench.tasks import TASKS, check_task_metrics
from tests.tiny_models import build_tiny_clip, build_tiny_pipeline
from tests.workflow_utils import REPO

LOGGER = "ipbench.methods.sd_text"


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd_text")
    return build_tiny_pipeline(root / "pipe", build_tiny_clip(root / "clip"))


@pytest.fixture(scope="module")
def method(pipeline_dir, tmp_path_factory):
    from methods.sd_text import SDText

    # Two steps keep the test fast; guidance > 1 so the unconditional branch runs too.
    params = {"pretrained": str(pipeline_dir), "num_inference_steps": 2}
    return SDText(tmp_path_factory.mktemp("prepared"), params, "cpu")


def request(item_id: str, seed: int, prompt: str = "a red circle", sample_index: int = 0) -> Request:
    return Request(item_id, sample_index, seed, {"prompt": prompt})


# ---------------------------------------------------------------- the task and its data


def test_registry_lists_sd_text_for_text2image_without_torch():
    code = ("import sys, methods; found = methods.available_methods(); "
            "print(found['sd_text'].tasks, found['sd_text'].uses_gpu); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    tasks, torch_loaded = out.strip().splitlines()
    assert tasks == "('text2image',) True"
    assert torch_loaded == "False"


def test_text2image_takes_only_metrics_without_an_image_prompt():
    assert TASKS["text2image"].image_key is None
    assert TASKS["text2image"].prompt_images({"prompt": "a red circle"}) == []
    check_task_metrics("text2image", ["fid", "kid", "clip_t", "attributes"])
    for metric in ("clip_i", "lpips", "subject_iou", "colour_error"):
        with pytest.raises(ValueError, match=f"tasks.text2image.metrics: '{metric}'"):
            check_task_metrics("text2image", ["fid", metric])


def test_mini_world_text2image_items_are_captions_of_fresh_scenes(tmp_path):
    from ipbench.world.render import ATTRIBUTES, Scene, caption

    datasets.build("mini_world", "text2image", tmp_path / "t2i", n_items=6, n_real=3, seed=0)
    items = read_jsonl(tmp_path / "t2i" / "items.jsonl")
    assert len(items) == 6 and len({item["id"] for item in items}) == 6
    for item in items:
        assert set(item["condition"]) == {"prompt"}  # nothing but the caption
        scene = Scene.from_dict(item["truth"]["scene"])
        assert item["condition"]["prompt"] == caption(scene)
        expected = {name: getattr(scene, name) for name in ATTRIBUTES if getattr(scene, name) is not None}
        assert item["truth"]["attributes"] == expected
    assert list((tmp_path / "t2i" / "conditions").iterdir()) == []
    real = read_jsonl(tmp_path / "t2i" / "real" / "manifest.jsonl")
    assert len(real) == 3
    assert all((tmp_path / "t2i" / "real" / row["path"]).is_file() for row in real)

    # The scenes are neither the variation items' nor the real set's (same seed).
    datasets.build("mini_world", "variation", tmp_path / "var", n_items=6, n_real=3, seed=0)
    scenes = lambda rows: {repr(sorted(row["truth"]["scene"].items())) for row in rows}  # noqa: E731
    assert not scenes(items) & scenes(read_jsonl(tmp_path / "var" / "items.jsonl"))
    assert not {item["condition"]["prompt"] for item in items} & {row["caption"] for row in real}


# The evaluate job's script, run outside Snakemake with a stand-in for its `snakemake` object.
EVALUATE_DRIVER = """
import json, runpy, sys
from types import SimpleNamespace

class Named(dict):
    __getattr__ = dict.__getitem__

spec = json.loads(sys.argv[1])
snakemake = SimpleNamespace(input=Named(spec["input"]), output=Named(spec["output"]), log=[spec["log"]],
                            params=Named(spec["params"]), wildcards=Named(spec["wildcards"]), threads=1,
                            rule="evaluate", resources={})
runpy.run_path(spec["script"], init_globals={"snakemake": snakemake}, run_name="__main__")
"""


def run_evaluate(tmp_path, data_dir, manifest, metrics, clip_dir):
    import json

    out = tmp_path / "metrics"
    spec = {"script": str(REPO / "workflow" / "scripts" / "evaluate.py"),
            "log": str(tmp_path / "evaluate.log"),
            "input": {"data": str(data_dir), "manifest": str(manifest)},
            "output": {"metrics": str(out / "oracle.json"), "per_item": str(out / "oracle.items.csv")},
            "params": {"metrics": metrics, "device": "cpu",
                       "options": {"bootstrap": {"resamples": 50}, "clip": {"backbone": f"hf-clip:{clip_dir}"}}},
            "wildcards": {"task": "text2image", "method": "oracle"}}
    result = subprocess.run([sys.executable, "-c", EVALUATE_DRIVER, json.dumps(spec)], cwd=REPO,
                            capture_output=True, text=True)
    log = (tmp_path / "evaluate.log").read_text() if (tmp_path / "evaluate.log").exists() else ""
    return result, log, out / "oracle.json"


def test_evaluate_scores_an_image_less_task(tmp_path):
    """Renders of each item's true scene: every attribute the analyzers read is right; CLIP-T is computed."""
    import json

    from ipbench.imageset import merge_manifests, requests_for, write_shard
    from ipbench.world.render import Scene, render

    data_dir = tmp_path / "data"
    datasets.build("mini_world", "text2image", data_dir, n_items=4, n_real=2, seed=0)
    items = read_jsonl(data_dir / "items.jsonl")
    truth = {item["id"]: Scene.from_dict(item["truth"]["scene"]) for item in items}
    requests = requests_for("test", "text2image", items, samples=2)
    set_dir = tmp_path / "images"
    write_shard(set_dir / "shard-000", "shard-000", requests, [render(truth[r.item_id]) for r in requests])
    merge_manifests([set_dir / "shard-000"], set_dir / "manifest.jsonl")
    clip_dir = build_tiny_clip(tmp_path / "clip")

    result, log, metrics_path = run_evaluate(tmp_path, data_dir, set_dir / "manifest.jsonl",
                                             ["clip_t", "attributes"], clip_dir)
    assert result.returncode == 0, result.stderr[-2000:] + log[-2000:]
    metrics = json.loads(metrics_path.read_text())["metrics"]
    for name in ("acc_background", "acc_position", "acc_size", "acc_colour", "all_correct"):
        assert metrics[name]["value"] == 1.0 and metrics[name]["n_items"] == 4
    assert metrics["no_single_object"]["value"] == 0.0
    assert "acc_shape" not in metrics  # no shape CNN given: not guessed
    assert "clip_t" in metrics and metrics["clip_t"]["n"] == 8

    result, log, _ = run_evaluate(tmp_path, data_dir, set_dir / "manifest.jsonl",
                                  ["clip_t", "clip_i"], clip_dir)
    assert result.returncode != 0
    assert "tasks.text2image.metrics: 'clip_i'" in result.stderr + log


# ---------------------------------------------------------------- the method


def test_params_are_checked_and_name_their_key(pipeline_dir, tmp_path):
    from methods.sd_text import SDText

    with pytest.raises(ValueError, match=r"methods\.sd_text\.params\.guidance\b"):
        SDText(tmp_path, {"pretrained": str(pipeline_dir), "guidance": 3.0})
    with pytest.raises(ValueError, match=r"methods\.sd_text\.params\.pretrained: required"):
        SDText(tmp_path, {})
    with pytest.raises(ValueError, match=r"methods\.sd_text\.params\.scheduler"):
        SDText(tmp_path, {"pretrained": str(pipeline_dir), "scheduler": "euler"})
    with pytest.raises(ValueError, match=r"methods\.cfg_high\.params\.guidance_scale: expected a number"):
        SDText(tmp_path, {"pretrained": str(pipeline_dir), "guidance_scale": "high"}, key="methods.cfg_high.params")
    with pytest.raises(ValueError, match=r"methods\.sd_text\.params\.num_inference_steps: 0 is below"):
        SDText(tmp_path, {"pretrained": str(pipeline_dir), "num_inference_steps": 0})
    with pytest.raises(ValueError, match=r"methods\.sd_text\.params\.pretrained"):
        SDText.prepare(tmp_path, SDText.check({"pretrained": str(tmp_path / "missing" / "pipe")}))
    defaults = SDText(tmp_path, {"pretrained": str(pipeline_dir)}).settings
    assert defaults == {"pretrained": str(pipeline_dir), "num_inference_steps": 20, "guidance_scale": 7.5,
                        "scheduler": "ddim", "negative_prompt": "", "precision": "auto", "memory_format": "contiguous",
                        "compile": "off", "compile_tuning": False, "fuse_qkv": False}


def test_prepare_records_the_folder_and_weight_hashes(pipeline_dir, tmp_path):
    from methods.sd_text import SDText

    out = tmp_path / "prepared"
    out.mkdir()
    facts = SDText.prepare(out, SDText.check({"pretrained": str(pipeline_dir)}))
    assert facts["source"] == "local" and facts["path"] == str(pipeline_dir.resolve())
    assert facts["pipeline_class"] == "StableDiffusionPipeline"
    assert facts["components"]["unet"] == ["diffusers", "UNet2DConditionModel"]
    weight_files = sorted(p for p in pipeline_dir.rglob("*.safetensors"))
    assert {"unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors"} <= set(facts["weights_sha256"])
    expected = {str(p.relative_to(pipeline_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in weight_files}
    assert facts["weights_sha256"] == expected
    assert list(out.iterdir()) == []  # nothing copied


def test_generate_is_seeded_per_request(method, tmp_path):
    images = method.generate([request("a", 1), request("c", 2)], tmp_path)
    assert len(images) == 2
    for image in images:
        assert image.dtype == np.uint8 and image.shape == (64, 64, 3)
    # Same seed and prompt, another item id, in a call of its own: the same image.
    assert np.array_equal(method.generate([request("b", 1)], tmp_path)[0], method.generate([request("a", 1)], tmp_path)[0])
    assert not np.array_equal(images[0], images[1])
    assert images[0].std() > 0


def _shard_set(method, items, n_shards, batch_size, data_dir):
    from ipbench.imageset import generate_shard, png_bytes

    hashes = {}
    for shard in range(n_shards):
        requests, images = generate_shard(method, items, suite="test", task="text2image", samples=1,
                                          batch_size=batch_size, shard=shard, n_shards=n_shards, data_dir=data_dir)
        hashes.update({r.item_id: hashlib.sha256(png_bytes(image)).hexdigest() for r, image in zip(requests, images)})
    return hashes


def test_batched_images_do_not_depend_on_the_shard_count(method, tmp_path):
    """Batches are fixed groups of sorted item ids, so 1 and 3 shards run the same batches: same bytes."""
    items = [{"id": f"c{k}", "condition": {"prompt": prompt}}
             for k, prompt in enumerate(["a b", "blue star", "x y z", "a", "b c", "d"])]
    one = _shard_set(method, items, 1, 2, tmp_path)
    three = _shard_set(method, items, 3, 2, tmp_path)
    assert one == three and len(set(one.values())) == 6


def test_an_image_of_a_batch_of_one_is_the_image_alone(method, tmp_path, monkeypatch):
    """With batch_size 1 every image is a function of its request alone, as on any shard or machine."""
    from methods.sd_text import SDText

    target = request("target", 7, "a green heart")
    items = [{"id": "target", "condition": {"prompt": "a green heart"}},
             {"id": "other", "condition": {"prompt": "blue star"}}]
    fresh = SDText(tmp_path, method.settings, "cpu")
    pipe = fresh.pipeline()
    sizes = []
    original = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, prompt, **kw: sizes.append(len(prompt))
                        or original(self, prompt, **kw))
    hashes = _shard_set(fresh, items, 1, 1, tmp_path)
    assert sizes == [1, 1]  # one request per pipeline call
    from ipbench.imageset import png_bytes
    from ipbench.seeds import item_seed

    alone = SDText(tmp_path, method.settings, "cpu").generate(
        [request("target", item_seed("test", "text2image", "target", 0), "a green heart")], tmp_path)[0]
    assert hashes["target"] == hashlib.sha256(png_bytes(alone)).hexdigest()
    assert target.seed == 7  # the helper's own request is untouched


def test_unknown_words_and_truncation_are_warned_about(method, tmp_path, caplog):
    # The tiny tokenizer holds single characters only: "a", "b" are words it knows, "zq" is not.
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        known = method.generate([request("known", 3, "a b")], tmp_path)
    assert known[0].shape == (64, 64, 3)
    assert not [r for r in caplog.records if r.name == LOGGER]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        images = method.generate([request("odd", 3, "a zq b"), request("odd", 4, "a zq b", 1)], tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1  # once per item, not per sample
    assert "odd" in warnings[0] and "zq" in warnings[0] and "'a'" not in warnings[0]
    assert len(images) == 2 and all(image.shape == (64, 64, 3) for image in images)

    # 16 one-character words + start and end tokens = 18 > the tiny encoder's 16 positions.
    caplog.clear()
    long_caption = " ".join("abcdefghijklmnop")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        method.generate([request("long", 5, long_caption)], tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(warnings) == 1 and "long" in warnings[0] and "18 tokens" in warnings[0]
    assert "'o p" in warnings[0]
