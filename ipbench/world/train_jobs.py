"""Training jobs of the mini world's artifacts: train, then measure the final numbers the manifest keeps.

Each function has the artifact signature of ``ipbench.training.registry``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from ipbench.world.train_data import load_npz


def _data(inputs, threads):
    return load_npz(inputs["train_set"], workers=threads)


def shape_cnn(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    from ipbench.world.shape_cnn import evaluate_shape_cnn, train_shape_cnn

    record = train_shape_cnn(out_dir, _data(inputs, threads), device=device, **settings)
    return {**record, "validation": evaluate_shape_cnn(out_dir, device=device)}


def _clip(preset, out_dir, inputs, settings, device, threads):
    from ipbench.world.clip_train import evaluate_clip, text_state_displacement, train_clip

    settings = dict(settings)
    evaluation = settings.pop("evaluation")
    record = train_clip(out_dir, preset, _data(inputs, threads), device=device, vae_dir=inputs.get("vae"), **settings)
    validation = evaluate_clip(out_dir, device=device, **evaluation)
    displacement = text_state_displacement(out_dir, device=device)
    validation.update({f"text_state_l2_{key}": value for key, value in displacement.items() if key != "n"})
    return {**record, "validation": validation}


def cond_clip(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    return _clip("conditioning", out_dir, inputs, settings, device, threads)


def judge_clip(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    return _clip("judge", out_dir, inputs, settings, device, threads)


def vae(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    from ipbench.world.mini_sd import evaluate_vae, train_vae, vae_config

    settings = dict(settings)
    architecture, evaluation = settings.pop("architecture"), settings.pop("evaluation")
    record = train_vae(out_dir, _data(inputs, threads), device=device, config=vae_config(**architecture), **settings)
    return {**record, "validation": evaluate_vae(out_dir, inputs["shape_cnn"], device=device, **evaluation)}


def unet(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    from transformers import CLIPConfig

    from ipbench.world.mini_sd import evaluate_pipeline, train_unet, unet_config
    from ipbench.world.pipeline import assemble_pipeline

    settings = dict(settings)
    architecture, evaluation = settings.pop("architecture"), settings.pop("evaluation")
    width = CLIPConfig.from_pretrained(inputs["cond_clip"]).text_config.hidden_size
    latent_channels = _latent_channels(inputs["vae"])
    record = train_unet(out_dir, inputs["vae"], inputs["cond_clip"], _data(inputs, threads), device=device,
                        config=unet_config(width, latent_channels=latent_channels, **architecture), **settings)
    with tempfile.TemporaryDirectory() as scratch:
        # The final numbers are measured through the same pipeline folder the suite generates with.
        assemble_pipeline(scratch, inputs["vae"], out_dir, inputs["cond_clip"])
        validation = evaluate_pipeline(scratch, inputs["shape_cnn"], device=device, **evaluation)
    return {**record, "validation": validation}


def _latent_channels(vae_dir) -> int:
    import json

    return json.loads((Path(vae_dir) / "config.json").read_text())["latent_channels"]


def dino(out_dir: Path, inputs: dict, settings: dict, device: str, subject=None, threads: int = 1) -> dict:
    from ipbench.world.dino_train import evaluate_dino, train_dino

    settings = dict(settings)
    evaluation = settings.pop("evaluation")
    record = train_dino(out_dir, _data(inputs, threads), device=device, **settings)
    return {**record, "validation": evaluate_dino(out_dir, device=device, **evaluation)}
