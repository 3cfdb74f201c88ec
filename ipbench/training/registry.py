"""Every trainable artifact in one registry: the mini world's models and methods' weights alike.

An artifact names its training function (imported only when it runs, so
listing artifacts imports no torch), the model sources it trains from
(``world:vae``, ``trained:<artifact>``, ``data:train_set``, ``task:subject``...),
its default settings, and whether it is trained once per subject. One DAG rule
trains any of them and one manifest writer records the result; shipped copies
live under ``<checkpoints>/<name>/`` and are verified instead of retrained.

The training function is called as
``train(out_dir, inputs, settings, device, subject=None) -> record``: ``inputs``
maps each declared role to a resolved path, ``settings`` are the defaults with
the config's ``training.<name>`` over them, and ``record`` holds ``history``
(rows of numbers with a ``step``), ``validation`` (final numbers) and anything
else worth keeping.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Artifact:
    name: str
    train: str  # "module:function"
    kind: str = "method"  # "world" (a mini-world model, named world:<name>) or "method" (trained:<name>)
    inputs: dict = field(default_factory=dict)  # role -> model source
    defaults: dict = field(default_factory=dict)
    per_subject: bool = False
    uses_gpu: bool = True
    description: str = ""

    @property
    def source(self) -> str:
        """How a method's params name this artifact."""
        return f"{'world' if self.kind == 'world' else 'trained'}:{self.name}"

    def train_function(self):
        module, _, function = self.train.partition(":")
        return getattr(importlib.import_module(module), function)


_REGISTRY: dict[str, Artifact] = {}


def register_artifact(artifact: Artifact) -> Artifact:
    if artifact.kind not in ("world", "method"):
        raise ValueError(f"artifact {artifact.name!r}: kind must be 'world' or 'method', got {artifact.kind!r}")
    if ":" not in artifact.train:
        raise ValueError(f"artifact {artifact.name!r}: train must be 'module:function', got {artifact.train!r}")
    known = _REGISTRY.get(artifact.name)
    if known is not None and known != artifact:
        raise ValueError(f"artifact name {artifact.name!r} registered twice ({known.train} and {artifact.train})")
    _REGISTRY[artifact.name] = artifact
    return artifact


def available_artifacts() -> dict[str, Artifact]:
    """Every registered artifact: the world's, and those that method files register."""
    import ipbench.world.artifacts  # noqa: F401  (registers the world models)
    import methods

    methods.available_methods()  # method files register their own artifacts
    return dict(sorted(_REGISTRY.items()))


def merged_settings(artifact: Artifact, configured: dict | None) -> dict:
    """The artifact's defaults with the config's ``training.<name>`` over them; unknown keys are errors."""
    configured = dict(configured or {})
    unknown = sorted(set(configured) - set(artifact.defaults))
    if unknown:
        raise ValueError(f"config key training.{artifact.name}.{unknown[0]}: unknown setting "
                         f"(known: {', '.join(artifact.defaults)})")
    merged = {**artifact.defaults, **configured}
    for key, value in configured.items():
        if isinstance(artifact.defaults[key], dict) and isinstance(value, dict):
            merged[key] = {**artifact.defaults[key], **value}
    return merged
