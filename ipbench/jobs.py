"""Small helpers every workflow script uses: logging to the rule's log, device choice."""
from __future__ import annotations

import logging
import sys


def start_job(snakemake) -> logging.Logger:
    """Send logging and stderr to the rule's ``log:`` file."""
    handle = open(snakemake.log[0], "w", buffering=1, encoding="utf-8")
    sys.stderr = handle
    logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)
    return logging.getLogger(snakemake.rule)


def resolve_device(name: str = "auto") -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key device: 'cuda' requested but torch sees no GPU")
    return name
