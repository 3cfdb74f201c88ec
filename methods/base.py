"""The interface every method implements."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from ipbench.imageset import Request


class Method:
    """One baseline. Subclass, set ``name`` and ``tasks``, decorate with ``@register_method``.

    ``prepare`` downloads or trains into a model folder (a DAG output);
    ``generate`` turns requests into images. The harness writes the PNGs and
    the manifest, so every method's image set has the same format and
    checksums, and a method never has to handle files or atomicity.
    """

    name: ClassVar[str] = ""
    tasks: ClassVar[tuple[str, ...]] = ()
    # Methods that run a network ask the scheduler for a GPU (resources: gpu=1).
    uses_gpu: ClassVar[bool] = False

    def __init__(self, model_dir: Path, params: dict | None = None, device: str = "cpu"):
        self.model_dir = Path(model_dir)
        self.params = dict(params or {})
        self.device = device

    @classmethod
    def prepare(cls, out_dir: Path, params: dict) -> dict:
        """Download or train into ``out_dir``; return facts for the provenance record.

        The default is for methods without weights.
        """
        return {}

    def generate(self, requests: list[Request], data_dir: Path) -> list[np.ndarray]:
        """Return one uint8 HxWx3 image per request.

        ``data_dir`` is the task's data folder: image conditions are paths
        relative to it. Draw all randomness from ``request.seed`` (one
        generator per request), never from batch position.
        """
        raise NotImplementedError

