"""DAG runs that need a checkout of their own: broken checkpoints, retraining, trained method weights.

Apart from tests/test_workflow.py (whose tests share one finished smoke run), so that pytest's two
workers run the two files side by side.
"""
import hashlib
import json

import pytest

from tests.workflow_utils import copy_code, smoke_config, snakemake, write_config

pytestmark = pytest.mark.slow
RESULTS = "results/smoke"


def test_corrupted_checkpoint_stops_the_run_naming_the_file(tmp_path):
    copy_code(tmp_path)
    weights = tmp_path / "data" / "checkpoints" / "shape_cnn" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    result = snakemake(tmp_path, "results/smoke/checkpoints/shape_cnn/verified.json",
                       configfile=tmp_path / "config" / "smoke.yaml")
    assert result.returncode != 0
    log = (tmp_path / RESULTS / "logs" / "verify_artifact" / "shape_cnn.log").read_text()
    assert "data/checkpoints/shape_cnn/model.safetensors" in log and "retrain=shape_cnn" in log
    assert not (tmp_path / RESULTS / "checkpoints" / "shape_cnn" / "verified.json").exists()


def test_missing_unet_weights_stop_the_run_naming_the_file(tmp_path):
    copy_code(tmp_path)
    (tmp_path / "data" / "checkpoints" / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    result = snakemake(tmp_path, "results/smoke/pipelines/mini_sd", configfile=tmp_path / "config" / "smoke.yaml")
    assert result.returncode != 0
    log = (tmp_path / RESULTS / "logs" / "verify_artifact" / "unet.log").read_text()
    assert "data/checkpoints/unet/diffusion_pytorch_model.safetensors: missing" in log and "retrain=unet" in log
    assert not (tmp_path / RESULTS / "pipelines" / "mini_sd").exists()


def test_ip_adapters_train_through_the_dag_and_are_evaluated_on_both_tasks(tmp_path):
    """Two training steps of each adapter on the shipped mini SD (speed only: the images mean nothing)."""
    run = copy_code(tmp_path)
    config = smoke_config()
    config["world"]["train_set"] = {"n": 24, "seed": 0}
    tiny = {"steps": 2, "batch_size": 4, "evaluation": {"n": 4}}
    config["training"] = {"ip_adapter": tiny, "ip_adapter_plus": tiny}
    for name in ("ip_adapter", "ip_adapter_plus"):
        config["methods"][name] = {"batch_size": 2, "params": {"num_inference_steps": 2, "caption": False}}
    targets = [f"{RESULTS}/metrics/{task}/{name}.json" for task in ("variation", "subject")
               for name in ("ip_adapter", "ip_adapter_plus")]
    result = snakemake(run, *targets, configfile=write_config(run, config, "ip_adapter.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    for name in ("ip_adapter", "ip_adapter_plus"):
        manifest = json.loads((run / RESULTS / "trained" / name / "manifest.json").read_text())
        assert manifest["validation"]["n_heldout"] == 4 and "ip-adapter.safetensors" in manifest["files"]
        prepared = json.loads((run / RESULTS / "models" / name / "prepared.json").read_text())
        assert prepared["adapter_sha256"] == manifest["files"]["ip-adapter.safetensors"]
    for target in targets:
        record = json.loads((run / target).read_text())
        assert {"clip_i", "clip_t", "subject_iou"} <= set(record["metrics"]), target


TINY_TRAINING = {
    "cond_clip": {"steps": 2, "batch_size": 16, "val_every": 0, "evaluation": {"n": 8, "n_subjects": 2}},
    "judge_clip": {"steps": 2, "batch_size": 16, "val_every": 0, "evaluation": {"n": 8, "n_subjects": 2}},
    "vae": {"steps": 2, "batch_size": 4, "evaluation": {"n": 8},
            "architecture": {"block_out_channels": [32, 32, 32], "latent_channels": 8}},
    "unet": {"steps": 2, "batch_size": 4, "architecture": {"block_out_channels": [32, 32, 32], "layers_per_block": 1},
             "evaluation": {"n": 2, "guidance_scales": [5.0], "num_inference_steps": 2}},
}


def test_retraining_the_mini_sd_and_judges_runs_through_the_training_rule(tmp_path):
    """The GPU retraining path, at toy size on CPU: every world model the default suite retrains, in
    dependency order (the UNet on the new VAE and CLIP, the judge on the new VAE's reconstructions)."""
    from ipbench.training.registry import available_artifacts

    copy_code(tmp_path)
    config = smoke_config()
    config["world"]["train_set"] = {"n": 16, "seed": 0}
    names = [name for name in TINY_TRAINING] + (["dino"] if "dino" in available_artifacts() else [])
    config["training"] = {name: TINY_TRAINING.get(name, {"steps": 2, "batch_size": 8}) for name in names}
    config["retrain"] = ",".join(names)
    targets = [f"{RESULTS}/trained/{name}/manifest.json" for name in names] + [f"{RESULTS}/pipelines/mini_sd"]
    result = snakemake(tmp_path, *targets, configfile=write_config(tmp_path, config, "retrain.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    for name in names:
        folder = tmp_path / RESULTS / "trained" / name
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["artifact"] == name and manifest["rule"] == "train_artifact"
        assert manifest["settings"]["steps"] == 2 and manifest["validation"]
        assert (folder / "training_curves.png").stat().st_size > 0
        for file, digest in manifest["files"].items():
            assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == digest
    unet = json.loads((tmp_path / RESULTS / "trained" / "unet" / "manifest.json").read_text())
    assert {"vae", "cond_clip"} <= set(unet["inputs"])  # trained on the new VAE and CLIP, whose manifests it names
    judge = json.loads((tmp_path / RESULTS / "trained" / "judge_clip" / "manifest.json").read_text())
    assert "vae" in judge["inputs"]
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / RESULTS / "pipelines" / "mini_sd")
    assert pipe.unet.config.in_channels == 8 == pipe.vae.config.latent_channels


def test_a_stage_continues_from_its_shipped_weights_through_the_training_rule(tmp_path):
    """The IF stages' GPU path (init_from: shipped:if_base), one step on CPU: the shipped copy is verified
    and loaded, and the new manifest names it and adds its steps."""
    copy_code(tmp_path)
    config = smoke_config()
    config["world"]["train_set"] = {"n": 16, "seed": 0}
    config["training"] = {"if_base": {"steps": 1, "batch_size": 2, "init_from": "shipped:if_base", "caption_variants": 1,
                                      "evaluation": {"n": 2, "guidance_scales": [1.0], "num_inference_steps": 1,
                                                     "thresholding": [True]}}}
    config["retrain"] = "if_base"
    target = f"{RESULTS}/trained/if_base/manifest.json"
    result = snakemake(tmp_path, target, configfile=write_config(tmp_path, config, "continue.yaml"))
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((tmp_path / target).read_text())
    shipped = json.loads((tmp_path / "data" / "checkpoints" / "if_base" / "manifest.json").read_text())
    assert manifest["inputs"]["init"]["sha256"] == hashlib.sha256(
        (tmp_path / "data" / "checkpoints" / "if_base" / "manifest.json").read_bytes()).hexdigest()
    lineage, before = manifest["training_result"]["init_from"], shipped["training_result"]
    assert lineage["steps_before"] == before.get("total_steps", before["stopped_at_step"]) > 0
    assert manifest["training_result"]["total_steps"] == lineage["steps_before"] + 1
    config["training"]["if_base"]["init_from"] = "shipped:if_nothing"
    result = snakemake(tmp_path, target, "--forcerun", "train_artifact", configfile=write_config(tmp_path, config, "bad.yaml"))
    assert result.returncode != 0 and "artifact if_base setting init_from: 'shipped:if_nothing' names no single" in result.stderr
