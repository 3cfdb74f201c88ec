"""The interface every method implements."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from ipbench.imageset import Request
from ipbench.params import Param, check_params


class Method:
    """One baseline. Subclass, set ``name``, ``tasks`` and ``params``, decorate with ``@register_method``.

    ``prepare`` records (or downloads) what the method runs on, into a model folder
    (a DAG output); ``generate`` turns one batch of requests into images. The
    harness writes the PNGs and the manifest, so every method's image set has
    the same format and checksums, and a method never handles files or atomicity.
    Weights a method trains are artifacts (``ipbench.training.registry``), trained
    by their own DAG rule and named in params as ``trained:<artifact>``.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    # Every parameter the config may set, with its default, type and range (ipbench.params).
    params: ClassVar[dict[str, Param]] = {}
    # Methods that run a network ask the scheduler for a GPU (resources: gpu=1) when the suite runs on CUDA.
    uses_gpu: ClassVar[bool] = False
    # Items per generation batch when the config does not say; batches are fixed groups of sorted item ids.
    batch_size: ClassVar[int] = 16
    # A condition key whose value the method loads weights for (e.g. "subject"): batches never mix two
    # values, and each shard takes whole groups, so a job loads each group's weights once.
    group_by: ClassVar[str | None] = None

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu", key: str | None = None):
        self.model_dir = Path(model_dir)
        self.settings = self.check(params, key)
        self.device = device

    @classmethod
    def check(cls, params: dict | None, key: str | None = None) -> dict:
        """The params over their defaults, checked; errors name ``key`` (default methods.<name>.params)."""
        return check_params(cls.params, params, key or f"methods.{cls.name}.params")

    @classmethod
    def prepare(cls, out_dir: Path, settings: dict) -> dict:
        """Record what the method runs on (or download it) into ``out_dir``; return facts for provenance.

        ``settings`` are checked params, model sources already resolved to paths or Hub ids.
        The default is for methods without weights.
        """
        return {}

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        """Return one uint8 HxWx3 image per request of this batch.

        ``data_dir`` is the task's data folder: image conditions are paths
        relative to it. Draw all randomness from ``request.seed`` (one
        generator per request), never from batch position.
        """
        raise NotImplementedError
