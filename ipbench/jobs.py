"""Small helpers every workflow script uses: logging to the rule's log, and the job's card."""
from __future__ import annotations

import logging
import sys

_GPU_LOCK = None  # held for the job's lifetime


def start_job(snakemake) -> logging.Logger:
    """Send logging and stderr to the rule's ``log:`` file; pin a GPU job to a card of its own."""
    global _GPU_LOCK
    handle = open(snakemake.log[0], "w", buffering=1, encoding="utf-8")
    sys.stderr = handle
    logging.basicConfig(stream=handle, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        force=True)
    log = logging.getLogger(snakemake.rule)
    if int(getattr(snakemake, "resources", {}).get("gpu", 0) or 0) > 0:
        from ipbench.gpu import pin_to_free_gpu

        _GPU_LOCK = pin_to_free_gpu()
        import os

        log.info("GPU job pinned to CUDA_VISIBLE_DEVICES=%s", os.environ["CUDA_VISIBLE_DEVICES"])
    return log


def check_device(device: str) -> str:
    """The device the DAG decided (ipbench.gpu.dag_device), checked against what torch sees."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key device: 'cuda' but torch sees no GPU in this job")
    return device
