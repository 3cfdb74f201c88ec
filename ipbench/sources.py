"""Model sources, resolved in one table: what a method param or an artifact input names.

- ``world:<name>``: a mini-world model (``world:vae``, ``world:cond_clip``...) or the
  assembled mini Stable Diffusion pipeline (``world:mini_sd``);
- ``trained:<artifact>``: weights a method trains (``ipbench.training.registry``);
- ``shipped:<artifact>``: the shipped checkpoint of an artifact, verified, even while it is retrained
  (what a continued training run starts from: the ``init_from`` setting);
- ``data:train_set``: the mini world's rendered training set;
- ``task:<task>``: a task's data folder (e.g. a subject's reference images);
- ``weights:lpips_<net>``: the converted LPIPS weights;
- anything else: a local folder or a Hub id, passed through unchanged.

Each resolves to the path the job receives and the DAG files it must wait for,
so no rule special-cases a method. A shipped artifact (``<checkpoints>/<name>/manifest.json``)
is verified and used in place; one without shipped weights, or named by
``retrain``, is trained by the DAG. Kept free of heavy imports: the Snakefile uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PIPELINES = {"mini_sd": ("vae", "unet", "cond_clip")}  # assembled world pipelines and the models they hold


@dataclass(frozen=True)
class Resolved:
    path: str  # what the job is given
    inputs: tuple[str, ...]  # DAG files it waits for


def parse_retrain(value, known: list[str]) -> set[str]:
    """``retrain`` as a set of artifact names: true (all), false, a list, or a comma-separated string."""
    if isinstance(value, bool) or str(value).lower() in ("true", "false"):
        return set(known) if str(value).lower() == "true" else set()
    names = list(value) if isinstance(value, (list, tuple)) else [n.strip() for n in str(value).split(",")]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"config key retrain: {unknown[0]!r} is not a trainable artifact "
                         f"(known: {', '.join(known)})")
    return set(names)


class SourceTable:
    """Resolves model sources for one suite."""

    def __init__(self, results: str, checkpoints: str, artifacts: dict, retrain: set[str], tasks: list[str],
                 world: bool, subjects: list[str]):
        self.results, self.checkpoints = results, checkpoints
        self.artifacts, self.retrain, self.tasks, self.world = artifacts, retrain, tasks, world
        self.subjects = subjects

    # ---- artifacts

    def _shipped_manifest(self, name: str, subject: str | None = None) -> Path:
        folder = Path(self.checkpoints) / name
        return (folder / "subjects" / subject if subject else folder) / "manifest.json"

    def shipped(self, name: str) -> bool:
        """Whether the artifact is used from its shipped copy (verified) rather than trained here."""
        if name in self.retrain:
            return False
        if self.artifacts[name].per_subject:
            return bool(self.subjects) and all(self._shipped_manifest(name, s).is_file() for s in self.subjects)
        return self._shipped_manifest(name).is_file()

    def artifact_dir(self, name: str) -> str:
        return f"{self.checkpoints}/{name}" if self.shipped(name) else f"{self.results}/trained/{name}"

    def artifact_done(self, name: str, subject: str | None = None) -> str:
        """The file a consumer of the artifact (or of one subject's copy) waits for."""
        tail = f"{name}/subjects/{subject}" if subject else name
        if self.shipped(name):
            return f"{self.results}/checkpoints/{tail}/verified.json"
        return f"{self.results}/trained/{tail}/manifest.json"

    def artifact_inputs(self, name: str) -> tuple[str, ...]:
        if self.artifacts[name].per_subject:
            return tuple(self.artifact_done(name, subject) for subject in self.subjects)
        return (self.artifact_done(name),)

    # ---- sources

    def resolve(self, value: str, key: str) -> Resolved:
        """The path and DAG inputs of source ``value``; ``key`` is the config key it came from, for errors."""
        prefix, sep, name = value.partition(":")
        if not sep or prefix not in ("world", "trained", "shipped", "data", "task", "weights"):
            return Resolved(value, ())  # a local folder or a Hub id
        if prefix in ("world", "trained"):
            return self._artifact_source(prefix, name, key)
        if prefix == "shipped":
            if name not in self.artifacts or self.artifacts[name].per_subject:
                raise ValueError(f"{key}: {value!r} names no single trainable artifact")
            if not self._shipped_manifest(name).is_file():
                raise ValueError(f"{key}: {value!r}: no shipped checkpoint ({self._shipped_manifest(name)} is missing)")
            return Resolved(f"{self.checkpoints}/{name}", (f"{self.results}/checkpoints/{name}/verified.json",))
        if prefix == "data":
            if name != "train_set" or not self.world:
                raise ValueError(f"{key}: {value!r} names no dataset (data:train_set needs the mini world)")
            path = f"{self.results}/world/train_set.npz"
            return Resolved(path, (path,))
        if prefix == "task":
            if name not in self.tasks:
                raise ValueError(f"{key}: {value!r}: task {name!r} is not configured (tasks: {', '.join(self.tasks)})")
            path = f"{self.results}/data/{name}"
            return Resolved(path, (path,))
        if not name.startswith("lpips_"):
            raise ValueError(f"{key}: {value!r} names no weights (known: weights:lpips_alex, weights:lpips_vgg)")
        path = f"data/weights/{name}.pt"
        return Resolved(path, (path,))

    def _artifact_source(self, prefix: str, name: str, key: str) -> Resolved:
        kind = "world" if prefix == "world" else "method"
        if kind == "world" and not self.world:
            raise ValueError(f"{key}: world:{name} needs the mini world (this suite has no `world` section)")
        if kind == "world" and name in PIPELINES:
            path = f"{self.results}/pipelines/{name}"
            return Resolved(path, (path,))
        artifact = self.artifacts.get(name)
        if artifact is None or artifact.kind != kind:
            known = sorted([a.source for a in self.artifacts.values() if a.kind == kind]
                           + ([f"world:{p}" for p in PIPELINES] if kind == "world" else []))
            raise ValueError(f"{key}: {prefix}:{name} names no artifact that a rule makes "
                             f"(known: {', '.join(known) or 'none'})")
        return Resolved(self.artifact_dir(name), self.artifact_inputs(name))
