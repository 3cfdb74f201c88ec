"""Loading diffusers pipelines from a model source, and recording what was loaded."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth")
SCHEDULERS = ("ddim",)


def local_folder(source: str, key: str) -> Path | None:
    """The pipeline folder ``source`` names, or None when it is a Hub id; bad folders name ``key``."""
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ValueError(f"{key}: {path} has no model_index.json (not a diffusers pipeline folder)")
        return path
    looks_like_path = path.is_absolute() or source.startswith((".", "~")) or source.count("/") > 1
    if path.exists() or looks_like_path:
        raise ValueError(f"{key}: {source} is not a pipeline folder")
    return None


def describe_source(source: str, key: str) -> dict:
    """Provenance of a pipeline source: the folder and its weight hashes, or the Hub id and revision."""
    folder = local_folder(source, key)
    if folder is not None:
        from metrics.weights import sha256_file

        index = json.loads((folder / "model_index.json").read_text())
        files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in WEIGHT_SUFFIXES]
        weights = {str(path.relative_to(folder)): sha256_file(path) for path in files}
        if not weights:
            raise ValueError(f"{key}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) in {folder}")
        facts = {"source": "local", "path": str(folder.resolve()), "weights_sha256": weights}
    else:
        from huggingface_hub import hf_hub_download

        index_path = Path(hf_hub_download(source, "model_index.json"))
        index = json.loads(index_path.read_text())
        facts = {"source": "hub", "repo_id": source}
        if index_path.parent.parent.name == "snapshots":  # the cache names snapshots by commit
            facts["revision"] = index_path.parent.name
    components = {name: value for name, value in index.items() if not name.startswith("_")}
    return {"pretrained": source, **facts, "pipeline_class": index.get("_class_name"),
            "pipeline_diffusers_version": index.get("_diffusers_version"), "components": components}


def load_pipeline(pipeline_class, source: str, device: str, scheduler: str | None = "ddim", **components):
    """``pipeline_class.from_pretrained(source)`` in float32 on ``device``, with the given scheduler
    (None: the folder's own, for a method that configures it).

    No safety checker (the benchmark scores every image); ``components`` replace
    or add pipeline parts (e.g. a ControlNet). (channels_last measured 15% slower for
    the mini SD's UNet on this project's CPU, so memory stays contiguous.)
    """
    import torch
    from diffusers import DDIMScheduler

    if scheduler is not None and scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler {scheduler!r} is not supported (use {', '.join(SCHEDULERS)})")
    if "safety_checker" in inspect.signature(pipeline_class.__init__).parameters:
        components.setdefault("safety_checker", None)
        components.setdefault("requires_safety_checker", False)
    pipe = pipeline_class.from_pretrained(source, dtype=torch.float32, **components)
    if scheduler is not None:
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
