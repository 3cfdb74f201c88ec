"""Pieces every training loop shares: a time-aware schedule, autocast, fp16 saving, progress."""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return images.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def autocast(device: torch.device):
    """bf16 autocast on CUDA; a no-op on CPU (CPU training is for tests and small user runs)."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=torch.device(device).type == "cuda")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_half(model, out_dir: Path) -> None:
    """``save_pretrained`` with float16 weights (half the bytes in the repo), then back to float32.

    Loaders must ask for float32 explicitly (``torch_dtype=``/``dtype=torch.float32``):
    diffusers and transformers otherwise keep the stored float16.
    """
    model.to(torch.float16).save_pretrained(out_dir, safe_serialization=True)
    model.to(torch.float32)


class ProgressSchedule:
    """Linear warmup, then cosine decay over training *progress*: the larger of steps done / ``steps``
    and time used / ``time_limit_s``. A run that the time limit stops early still ends at a decayed
    learning rate, so stopping (recorded as ``stopped_at_step``) costs steps, not a cut-short schedule.
    """

    def __init__(self, optimizer, lr: float, steps: int, time_limit_s: float | None = None,
                 warmup: int | None = None):
        self.optimizer, self.lr, self.steps, self.time_limit_s = optimizer, lr, max(steps, 1), time_limit_s
        self.warmup = max(1, min(500, steps // 20) if warmup is None else warmup)
        self.started = time.perf_counter()

    def progress(self, step: int) -> float:
        done = step / self.steps
        if self.time_limit_s:
            done = max(done, (time.perf_counter() - self.started) / self.time_limit_s)
        return done

    def set_lr(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.warmup)
        lr = self.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress(step))))
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr

    def finished(self, step: int) -> bool:
        return self.progress(step) >= 1.0


def seconds_since(started: float, device) -> float:
    """Wall seconds of a training loop, after the GPU's queued work has finished."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def progress_bar(total: int, desc: str):
    """A tqdm bar on stderr (the rule's log inside a job); sparse updates, so logs stay small."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, file=sys.stderr, mininterval=0.5 if interactive else 15.0,
                ascii=not interactive, dynamic_ncols=interactive)
