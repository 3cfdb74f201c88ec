"""Train one mini-world model and write its manifest: hashes, rule, config, seed, commit, device, numbers."""
import json
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
    data = load_npz(snakemake.input[0], workers=snakemake.threads)
    started = time.time()
    if name == "shape_cnn":
        from ipbench.world.shape_cnn import evaluate_shape_cnn, train_shape_cnn

        history = train_shape_cnn(out_dir, data, device=device, **training)
        (out_dir / "loss_history.json").write_text(json.dumps(history["history"]))
        validation = evaluate_shape_cnn(out_dir, device=device)
    else:
        from ipbench.world.clip_train import evaluate_clip, train_clip

        history = train_clip(out_dir, {"judge_clip": "judge", "cond_clip": "conditioning"}[name], data, device=device,
                             **training)
        (out_dir / "loss_history.json").write_text(json.dumps(history["history"]))
        validation = evaluate_clip(out_dir, device=device)
    seconds = time.time() - started
    log.info("%s trained in %.1f s: %s", name, seconds, json.dumps(validation))
    files = {p.name: sha256_file(p) for p in sorted(out_dir.iterdir()) if p.is_file() and p.name != "manifest.json"}
    atomic_write_json(snakemake.output[0], {
        "model": name,
        "files": files,
        "rule": "train_world_model",
        "training": training,
        "train_set": {"file": snakemake.input[0], "sha256": sha256_file(snakemake.input[0])},
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
