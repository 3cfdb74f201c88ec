"""Run the Snakemake DAG on a copy of the code in a temporary directory."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CODE = ("Snakefile", "workflow", "methods", "metrics", "ipbench", "config", "data/checkpoints")


def copy_code(dest: Path) -> Path:
    """A throw-away checkout: tests may add a method or edit config without touching the repo."""
    for name in CODE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / name)
    return dest


def write_config(dest: Path, config: dict, name: str = "test.yaml") -> Path:
    path = dest / "config" / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def smoke_config() -> dict:
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def snakemake(workdir: Path, *args: str, configfile: Path | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--cores", "2", "--snakefile", str(workdir / "Snakefile"),
               "--directory", str(workdir)]
    command += list(args)
    if configfile is not None:
        command += ["--configfile", str(configfile)]  # last: it takes several values
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)
