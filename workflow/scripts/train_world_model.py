"""Train one mini-world model and write its manifest: hashes, rule, config, seed, commit, device, numbers."""
import json
import tempfile
import time
from pathlib import Path

import torch

from ipbench import provenance
from ipbench.io import atomic_write_json
from ipbench.jobs import resolve_device, start_job
from ipbench.world.train_data import load_npz
from metrics.weights import sha256_file


def main(snakemake):
    log = start_job(snakemake)
    name = snakemake.wildcards.model
    out_dir = Path(snakemake.output[0]).parent
    training = dict(snakemake.params.training)
    device = resolve_device(snakemake.params.device)
    torch.set_num_threads(snakemake.threads)
    data = load_npz(snakemake.input.train_set, workers=snakemake.threads)
    started = time.time()
    model_dirs = snakemake.params.model_dirs
    if name == "shape_cnn":
        from ipbench.world.shape_cnn import evaluate_shape_cnn, train_shape_cnn

        history = train_shape_cnn(out_dir, data, device=device, **training)
        validation = evaluate_shape_cnn(out_dir, device=device)
    elif name == "vae":
        from ipbench.world.mini_sd import evaluate_vae, train_vae, vae_config

        history = train_vae(out_dir, data, device=device, config=vae_config(**snakemake.params.architecture),
                            **training)
        validation = evaluate_vae(out_dir, model_dirs["shape_cnn"], device=device)
    elif name == "unet":
        from ipbench.world.mini_sd import assemble_pipeline, evaluate_pipeline, train_unet, unet_config

        from transformers import CLIPConfig

        width = CLIPConfig.from_pretrained(model_dirs["cond_clip"]).text_config.hidden_size
        history = train_unet(out_dir, model_dirs["vae"], model_dirs["cond_clip"], data, device=device,
                             config=unet_config(width, **snakemake.params.architecture), **training)
        with tempfile.TemporaryDirectory() as scratch:
            # The final numbers are measured through the same pipeline folder the suite generates with.
            assemble_pipeline(scratch, model_dirs["vae"], out_dir, model_dirs["cond_clip"])
            validation = evaluate_pipeline(scratch, model_dirs["shape_cnn"], device=device,
                                           **snakemake.params.evaluation)
    else:
        from ipbench.world.clip_train import evaluate_clip, train_clip

        history = train_clip(out_dir, {"judge_clip": "judge", "cond_clip": "conditioning"}[name], data, device=device,
                             **training)
        validation = evaluate_clip(out_dir, device=device)
    (out_dir / "loss_history.json").write_text(json.dumps(history["history"]))
    seconds = time.time() - started
    log.info("%s trained in %.1f s: %s", name, seconds, json.dumps(validation))
    files = {p.name: sha256_file(p) for p in sorted(out_dir.iterdir()) if p.is_file() and p.name != "manifest.json"}
    atomic_write_json(snakemake.output[0], {
        "model": name,
        "files": files,
        "rule": "train_world_model",
        "training": training,
        "architecture": dict(snakemake.params.architecture),
        "inputs": {key: {"file": value, "sha256": sha256_file(value)}
                   for key, value in snakemake.input.items() if key != "train_set"},
        "train_set": {"file": snakemake.input.train_set, "sha256": sha256_file(snakemake.input.train_set)},
        "config_sha256": snakemake.params.config_sha256,
        "git": provenance.git_state(Path(snakemake.scriptdir).parents[1]),
        "device": provenance.device_info(),
        "packages": provenance.package_versions(),
        "train_seconds": round(seconds, 1),
        "training_result": {key: value for key, value in history.items() if key != "history"},
        "validation": validation,
    })


# Spawned worker processes re-import this file: only the parent runs the job.
if __name__ == "__main__":
    main(snakemake)
